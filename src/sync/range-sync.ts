import type { PeerId } from '@libp2p/interface'
import { equalBytes } from '../core/bytes.js'
import { PosError } from '../core/errors.js'
import { decodeBlock, signatureChecks } from '../core/records.js'
import { MAX_BLOCKS_PER_REQUEST, type Status } from '../network/reqresp.js'
import type { Logger } from '../util/logger.js'
import type { SyncChain, SyncNetwork } from './interfaces.js'
import { VerifyPool } from './verify-pool.js'

/** Range-sync batches at least this long have their signatures checked on worker threads. */
const POOL_MIN_BLOCKS = 16
/** Batches fetched and verified ahead of the one being imported. */
const SYNC_AHEAD = 3
/** Attempts per range request (a peer's rate limit answers with an error), a second apart. */
const REQUEST_ATTEMPTS = 3

export interface RangeSyncOptions {
  readonly chain: SyncChain
  readonly network: SyncNetwork
  readonly log: Logger
  /** Each imported batch: where we are and where the peer said it was. */
  readonly onProgress?: (p: { from: string; height: number; target: number }) => void
  readonly verifyPool?: VerifyPool
}

/**
 * Range sync: from one peer until we hold its head (bounded by its status and a round count). The
 * signatures of each 64-block batch are checked on worker threads while the previous batch is
 * imported. A failed request (e.g. the peer's rate limit) is retried twice, a second apart.
 */
export class RangeSync {
  private readonly syncing = new Set<string>()
  private readonly pool: VerifyPool
  private closed = false

  constructor(private readonly opts: RangeSyncOptions) {
    this.pool = opts.verifyPool ?? new VerifyPool()
  }

  /** True while a sync from any peer runs. */
  get active(): boolean {
    return this.syncing.size > 0
  }

  isSyncingFrom(peer: PeerId): boolean {
    return this.syncing.has(peer.toString())
  }

  async close(): Promise<void> {
    this.closed = true
    await this.pool.close()
  }

  /** Sync from `peer` up to its status. Resolves true when we caught up with it. */
  async syncFrom(peer: PeerId, status: Status): Promise<boolean> {
    const key = peer.toString()
    if (this.syncing.has(key) || this.closed) return false
    this.syncing.add(key)
    try {
      return await this.run(peer, status)
    } finally {
      this.syncing.delete(key)
      // The verify threads are for catching up; an idle peer does not keep them (about 10 MB each).
      if (this.syncing.size === 0) await this.pool.close()
    }
  }

  private async fetchRange(peer: PeerId, from: number): Promise<Uint8Array[]> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await this.opts.network.blocksByRange(peer, from, MAX_BLOCKS_PER_REQUEST)
      } catch (err) {
        if (attempt >= REQUEST_ATTEMPTS || this.closed) throw err
        await new Promise((r) => setTimeout(r, 1000))
      }
    }
  }

  private async run(peer: PeerId, status: Status): Promise<boolean> {
    const { chain, network } = this.opts
    const config = chain.config
    // Fetch and verify (on worker threads) the next batch while this one is imported.
    const prepare = async (from: number) => {
      const blocks = (await this.fetchRange(peer, from)).map((bytes) => decodeBlock(config, bytes))
      // A few blocks (catching up a slot or two) are cheaper to check inline than to ship to threads.
      if (blocks.length >= POOL_MIN_BLOCKS)
        await this.pool.verifyAndRemember(blocks.flatMap((b) => signatureChecks(config, b)))
      return blocks
    }
    const ahead: { from: number; blocks: ReturnType<typeof prepare> }[] = []
    let requested = chain.root().height + 1
    const fill = () => {
      while (ahead.length < SYNC_AHEAD && requested <= status.headHeight) {
        const blocks = prepare(requested)
        blocks.catch(() => {}) // awaited below; a batch left over when we stop must not be unhandled
        ahead.push({ from: requested, blocks })
        requested += MAX_BLOCKS_PER_REQUEST
      }
    }
    try {
      fill()
      for (let round = 0; round < 100_000 && ahead.length > 0; round++) {
        const batch = ahead.shift() as (typeof ahead)[number]
        const blocks = await batch.blocks
        if (blocks.length === 0) break
        if (blocks.length < MAX_BLOCKS_PER_REQUEST) {
          // A short answer: the requests beyond it are void; go on from its end if the peer's
          // chain goes further (and only forwards).
          const end = (blocks.at(-1) as (typeof blocks)[number]).height
          if (end < batch.from) break
          ahead.length = 0
          requested = end + 1
        }
        fill()
        for (const block of blocks) {
          const root = chain.root()
          if (block.height === root.height + 1 && !equalBytes(block.parent, root.hash)) {
            network.refuse(peer, `its chain conflicts with our finalized block at height ${root.height}`)
            return false
          }
          chain.receiveBlock(block, { source: peer.toString() })
        }
        this.opts.onProgress?.({ from: peer.toString(), height: chain.head().height, target: status.headHeight })
        // let gossip and slot timers run between batches
        await new Promise((r) => setImmediate(r))
        if (this.closed) break
      }
      return true
    } catch (err) {
      if (err instanceof PosError && err.action === 'REJECT')
        network.refuse(peer, `sent an invalid block during sync: ${err.message}`)
      else this.opts.log('debug', `sync from ${peer} stopped: ${(err as Error).message}`)
      return false
    }
  }
}
