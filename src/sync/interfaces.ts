import type { PeerId } from '@libp2p/interface'
import type { Verdict } from '../core/errors.js'
import type { ChainConfig } from '../core/params.js'
import type { Block } from '../core/records.js'
import type { Status } from '../network/reqresp.js'

/** What sync needs of the chain (the node's ChainService provides it). */
export interface SyncChain {
  readonly config: ChainConfig
  /** The last finalized block. */
  root(): { readonly height: number; readonly hash: Uint8Array }
  head(): { readonly height: number; readonly hash: Uint8Array }
  /** The stake this peer runs with (the fresh-network rule). */
  readonly stake: number
  /** Import a block; 'ignore' or a thrown PosError as for gossip. `source`: the peer it came from. */
  receiveBlock(block: Block, opts?: { expectedHash?: Uint8Array; source?: string }): Verdict
  /** True when the block is in our tree, or at or below our finalized height (imported and final). */
  holds(block: { readonly hashHex: string; readonly height: number }): boolean
  /** Hash (hex) of our final block at `height`, if we have one. */
  finalHashAt(height: number): Promise<string | undefined>
  /** Check blocks of a conflicting chain for slashable votes against ours; the evidence found. */
  inspectForeign(blocks: readonly Block[]): number
}

/** What sync needs of the network (the node's P2P provides it). */
export interface SyncNetwork {
  connectedPeers(): PeerId[]
  status(peer: PeerId): Promise<Status>
  blocksByRange(peer: PeerId, from: number, count: number): Promise<Uint8Array[]>
  blocksByHash(peer: PeerId, hashes: Uint8Array[]): Promise<Uint8Array[]>
  /** Disconnect and refuse a peer that broke the protocol. */
  refuse(peer: PeerId, reason: string): void
  /** Count one strike against a peer (wasted our work; too many and it is refused). */
  penalize(peer: PeerId, reason: string): void
  /** Peer exchange: dial these addresses (bounded by the network layer). */
  dialKnown(addrs: readonly string[]): void
  /** True when this peer was given somewhere to join. */
  hasBootstrap(): boolean
  /** True when our only place to join is the local default-port peer, and `peer` is it. */
  isOnlyDefaultPeer(peer: PeerId): boolean
}
