import type { ChainConfig } from '../core/params.js'

/** Gossip topics; every name carries the network id prefix, so networks never mix. */
export type Topic = 'candidates' | 'stakes' | 'readings' | 'evidence' | 'transfers'
export const TOPICS: readonly Topic[] = ['candidates', 'stakes', 'readings', 'evidence', 'transfers']

export function networkPrefix(net: ChainConfig): string {
  return `/pos-peer/${net.idHex.slice(0, 16)}`
}

export function topicName(net: ChainConfig, topic: Topic): string {
  return `${networkPrefix(net)}/${topic}/1`
}

export function discoveryTopic(net: ChainConfig): string {
  return `${networkPrefix(net)}/peer-discovery/1`
}

/** Request/response protocols. Status has no prefix: it is how a peer of another network is told so. */
export type Protocol = 'status' | 'blocks-by-range' | 'blocks-by-hash'

export function protocolName(net: ChainConfig, p: Protocol): string {
  return p === 'status' ? '/pos-peer/status/1' : `${networkPrefix(net)}/${p}/1`
}
