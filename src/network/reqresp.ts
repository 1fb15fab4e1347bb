import type { Libp2p, PeerId, Stream } from '@libp2p/interface'
import { lpStream } from 'it-length-prefixed-stream'
import { decodeCanonical, encodeCanonical, expectArray, expectBytes, expectUint } from '../core/encoding.js'
import { RecordError } from '../core/errors.js'
import type { ChainConfig } from '../core/params.js'
import { type Protocol, protocolName } from './topics.js'

/** Status: what a peer tells another on every new connection. */
export interface Status {
  readonly networkId: Uint8Array
  readonly headHash: Uint8Array
  readonly headHeight: number
  readonly finalizedHash: Uint8Array
  readonly finalizedHeight: number
  /** Up to MAX_STATUS_PEERS multiaddrs (with /p2p/) of peers the sender is connected to. */
  readonly peers: readonly string[]
  /** The stake the sender runs with (0: observer); only the fresh-network rule reads it. */
  readonly stake: number
}

export const MAX_STATUS_PEERS = 16

export const MAX_BLOCKS_PER_REQUEST = 64
export const MAX_HASHES_PER_REQUEST = 16
const REQUEST_BYTES = 2048
const TIMEOUT_MS = 10_000

export function encodeStatus(s: Status): Uint8Array {
  return encodeCanonical([
    s.networkId,
    s.headHash,
    s.headHeight,
    s.finalizedHash,
    s.finalizedHeight,
    s.peers.slice(0, MAX_STATUS_PEERS),
    s.stake,
  ])
}

export function decodeStatus(bytes: Uint8Array): Status {
  const v = expectArray(decodeCanonical(bytes, REQUEST_BYTES * 4), 'status', 7)
  const peers = expectArray(v[5], 'peers')
  if (peers.length > MAX_STATUS_PEERS || !peers.every((p) => typeof p === 'string' && p.length <= 200)) {
    throw new RecordError('REJECT', 'BAD_FIELD', { field: 'peers' })
  }
  return {
    peers: peers as string[],
    networkId: expectBytes(v[0], 'networkId', 32),
    headHash: expectBytes(v[1], 'headHash', 32),
    headHeight: expectUint(v[2], 'headHeight'),
    finalizedHash: expectBytes(v[3], 'finalizedHash', 32),
    finalizedHeight: expectUint(v[4], 'finalizedHeight'),
    stake: expectUint(v[6], 'stake'),
  }
}

/**
 * What the node serves, one handler per protocol (a missing one is a compile error). Requests
 * arrive decoded and bounded; responses are frames (blocks as their canonical bytes).
 */
export interface ReqRespHandlers {
  /** A peer's status arrived: answer with ours. */
  status(peer: PeerId, theirs: Status): Status
  'blocks-by-range'(peer: PeerId, req: { from: number; count: number }): Promise<Uint8Array[]>
  'blocks-by-hash'(peer: PeerId, hashes: Uint8Array[]): Promise<Uint8Array[]>
}

export const PROTOCOLS: readonly Protocol[] = ['status', 'blocks-by-range', 'blocks-by-hash']

type FrameHandler = (peer: PeerId, req: Uint8Array) => Promise<Uint8Array[]>

/** A simple token bucket per peer and protocol: `rate` requests per second, bursts of `burst`. */
class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>()
  constructor(
    private readonly rate = 50,
    private readonly burst = 100,
  ) {}

  take(key: string, now: number): boolean {
    const b = this.buckets.get(key) ?? { tokens: this.burst, at: now }
    b.tokens = Math.min(this.burst, b.tokens + ((now - b.at) / 1000) * this.rate)
    b.at = now
    if (this.buckets.size > 10_000) this.buckets.clear()
    this.buckets.set(key, b)
    if (b.tokens < 1) return false
    b.tokens -= 1
    return true
  }
}

/**
 * Length-prefixed request/response. Request: one frame. Response: a frame with the count n, then n
 * frames. Every read is bounded in size and time; every peer is rate-limited per protocol.
 */
export class ReqResp {
  private readonly limiter = new RateLimiter()
  private readonly maxBlockBytes: number

  constructor(
    private readonly node: Libp2p,
    private readonly net: ChainConfig,
    private readonly handlers: ReqRespHandlers,
    /** Our status, sent with every status request we make. */
    private readonly localStatus: () => Status,
  ) {
    this.maxBlockBytes = net.params.maxBlockBytes
  }

  /** Decoding and bounds of each protocol's request, in front of the node's handler. */
  private frameHandlers(): Record<Protocol, FrameHandler> {
    const h = this.handlers
    return {
      status: async (peer, req) => [encodeStatus(h.status(peer, decodeStatus(req)))],
      'blocks-by-range': async (peer, req) => {
        const [from, count] = expectArray(decodeCanonical(req, REQUEST_BYTES), 'range', 2)
        return h['blocks-by-range'](peer, {
          from: expectUint(from, 'from'),
          count: Math.min(expectUint(count, 'count'), MAX_BLOCKS_PER_REQUEST),
        })
      },
      'blocks-by-hash': async (peer, req) => {
        const hashes = expectArray(decodeCanonical(req, REQUEST_BYTES), 'hashes')
        if (hashes.length > MAX_HASHES_PER_REQUEST)
          throw new RecordError('REJECT', 'OVERSIZED', { hashes: hashes.length })
        return h['blocks-by-hash'](
          peer,
          hashes.map((x, i) => expectBytes(x, `hashes[${i}]`, 32)),
        )
      },
    }
  }

  async start(): Promise<void> {
    const handlers = this.frameHandlers()
    for (const p of PROTOCOLS) {
      await this.node.handle(
        protocolName(this.net, p),
        ({ stream, connection }) => {
          void this.serve(p, connection.remotePeer, stream, handlers[p])
        },
        { maxInboundStreams: 32 },
      )
    }
  }

  async stop(): Promise<void> {
    await this.node.unhandle(PROTOCOLS.map((p) => protocolName(this.net, p)))
  }

  private async serve(p: Protocol, peer: PeerId, stream: Stream, handler: FrameHandler) {
    const signal = AbortSignal.timeout(TIMEOUT_MS)
    try {
      if (!this.limiter.take(`${peer}/${p}`, Date.now())) throw new Error('rate limited')
      const lp = lpStream(stream, { maxDataLength: REQUEST_BYTES * 4 })
      const req = await lp.read({ signal })
      const frames = await handler(peer, req.subarray())
      await lp.write(encodeCanonical(frames.length), { signal })
      for (const f of frames) await lp.write(f, { signal })
      await stream.close({ signal })
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
    }
  }

  private async request(
    peer: PeerId,
    p: Protocol,
    req: Uint8Array,
    maxFrames: number,
    maxFrameBytes: number,
  ): Promise<Uint8Array[]> {
    const signal = AbortSignal.timeout(TIMEOUT_MS)
    const stream = await this.node.dialProtocol(peer, protocolName(this.net, p), { signal })
    try {
      const lp = lpStream(stream, { maxDataLength: maxFrameBytes })
      await lp.write(req, { signal })
      const n = expectUint(decodeCanonical((await lp.read({ signal })).subarray(), 16), 'count')
      if (n > maxFrames) throw new RecordError('REJECT', 'OVERSIZED', { frames: n, max: maxFrames })
      const out: Uint8Array[] = []
      for (let i = 0; i < n; i++) out.push((await lp.read({ signal })).subarray())
      await stream.close({ signal })
      return out
    } catch (err) {
      stream.abort(err instanceof Error ? err : new Error(String(err)))
      throw err
    }
  }

  async status(peer: PeerId): Promise<Status> {
    const [res] = await this.request(peer, 'status', encodeStatus(this.localStatus()), 1, REQUEST_BYTES * 4)
    if (res === undefined) throw new RecordError('REJECT', 'BAD_ENCODING', { reason: 'empty status' })
    return decodeStatus(res)
  }

  blocksByRange(peer: PeerId, from: number, count: number): Promise<Uint8Array[]> {
    const n = Math.min(count, MAX_BLOCKS_PER_REQUEST)
    return this.request(peer, 'blocks-by-range', encodeCanonical([from, n]), n, this.maxBlockBytes)
  }

  blocksByHash(peer: PeerId, hashes: Uint8Array[]): Promise<Uint8Array[]> {
    const list = hashes.slice(0, MAX_HASHES_PER_REQUEST)
    return this.request(peer, 'blocks-by-hash', encodeCanonical(list), list.length, this.maxBlockBytes)
  }
}
