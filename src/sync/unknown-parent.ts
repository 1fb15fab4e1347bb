import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import { decodeBlock } from '../core/records.js'
import type { Logger } from '../util/logger.js'
import type { SyncChain, SyncNetwork } from './interfaces.js'

/** Most parents wanted at once; more are dropped (the orphan pool keeps their children, bounded). */
export const MAX_WANTED_PARENTS = 64
/** Peers asked for one parent: the ones that sent a child first, then any connected ones. */
const PEERS_PER_PARENT = 4

export interface UnknownParentOptions {
  readonly chain: SyncChain
  readonly network: SyncNetwork
  readonly log: Logger
  readonly maxWanted?: number
}

/**
 * Unknown-parent fetch (as Lodestar's sync/unknownBlock): a bounded set of wanted parent hashes,
 * each with the peers that sent us a child of it (they have the parent, or claim to), asked by
 * hash first; then any connected peer.
 */
export class UnknownParentSync {
  /** parent hash (hex) -> peers that sent a child of it, in arrival order. */
  private readonly wanted = new Map<string, string[]>()
  private readonly inFlight = new Set<string>()
  private readonly max: number
  private closed = false

  constructor(private readonly opts: UnknownParentOptions) {
    this.max = opts.maxWanted ?? MAX_WANTED_PARENTS
  }

  get size(): number {
    return this.wanted.size
  }

  close(): void {
    this.closed = true
    this.wanted.clear()
  }

  /** A block arrived whose parent we lack; `source` is the peer that sent it (if known). */
  want(parentHex: string, source?: string): void {
    if (this.closed) return
    const peers = this.wanted.get(parentHex)
    if (peers !== undefined) {
      if (source !== undefined && !peers.includes(source) && peers.length < PEERS_PER_PARENT) peers.push(source)
      return
    }
    if (this.wanted.size >= this.max) return
    this.wanted.set(parentHex, source === undefined ? [] : [source])
    void this.fetch(parentHex)
  }

  private peersFor(parentHex: string): PeerId[] {
    const sources = this.wanted.get(parentHex) ?? []
    const out: PeerId[] = []
    for (const s of sources) {
      try {
        out.push(peerIdFromString(s))
      } catch {
        // not a peer id: only asked of connected peers
      }
    }
    for (const p of this.opts.network.connectedPeers()) {
      if (out.length >= PEERS_PER_PARENT) break
      if (!out.some((x) => x.equals(p))) out.push(p)
    }
    return out.slice(0, PEERS_PER_PARENT)
  }

  private async fetch(parentHex: string): Promise<void> {
    if (this.inFlight.has(parentHex)) return
    this.inFlight.add(parentHex)
    const { chain, network, log } = this.opts
    const hash = Buffer.from(parentHex, 'hex')
    try {
      for (const peer of this.peersFor(parentHex)) {
        if (this.closed) return
        try {
          const [bytes] = await network.blocksByHash(peer, [hash])
          if (bytes === undefined) continue
          chain.receiveBlock(decodeBlock(chain.config, bytes), { expectedHash: hash, source: peer.toString() })
          return
        } catch (err) {
          log('debug', `blocks-by-hash ${parentHex.slice(0, 12)} from ${peer}: ${(err as Error).message}`)
        }
      }
    } finally {
      this.inFlight.delete(parentHex)
      this.wanted.delete(parentHex)
    }
  }
}
