import type { PeerId } from '@libp2p/interface'
import { equalBytes, toHex } from '../core/bytes.js'
import { PosError } from '../core/errors.js'
import { type Block, decodeBlock, signatureChecks } from '../core/records.js'
import { MAX_BLOCKS_PER_REQUEST, type Status } from '../network/reqresp.js'
import type { Logger } from '../util/logger.js'
import type { SyncChain, SyncNetwork } from './interfaces.js'
import { VerifyPool } from './verify-pool.js'

/** Range-sync batches at least this long have their signatures checked on worker threads. */
const POOL_MIN_BLOCKS = 16
/** Batches fetched and verified ahead of the one being imported. */
const SYNC_AHEAD = 3
/** A sync starts this many blocks below the lower of our head and the peer's (see `run`). */
export const NEAR_HEAD_MARGIN = 16
/** Attempts per range request (a peer's rate limit answers with an error), a second apart. */
const REQUEST_ATTEMPTS = 3
/** Batches of one sync at most (64 blocks each): beyond this, the next status exchange goes on. */
const MAX_ROUNDS = 100_000
/** After a sync from a peer stopped short, it is not synced from again for this long. */
export const SYNC_BACKOFF_MS = 30_000
const MAX_BACKOFF_ENTRIES = 10_000

export interface RangeSyncOptions {
  readonly chain: SyncChain
  readonly network: SyncNetwork
  readonly log: Logger
  /** Each imported batch: where we are and where the peer said it was. */
  readonly onProgress?: (p: { from: string; height: number; target: number }) => void
  readonly verifyPool?: VerifyPool
  readonly now?: () => number
}

/**
 * Range sync: from one peer until we hold its head (bounded by its status and a round count). The
 * signatures of each 64-block batch are checked on worker threads while the previous batch is
 * imported. A failed request (e.g. the peer's rate limit) is retried twice, a second apart.
 */
export class RangeSync {
  private readonly syncing = new Set<string>()
  /** Peers we do not sync from until the given time (a sync from them stopped short). */
  private readonly backoff = new Map<string, number>()
  private readonly pool: VerifyPool
  private closed = false

  private readonly opts: RangeSyncOptions & { now: () => number }

  constructor(opts: RangeSyncOptions) {
    this.opts = { now: Date.now, ...opts }
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
    if (this.syncing.has(key) || this.closed || (this.backoff.get(key) ?? 0) > this.opts.now()) return false
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
    const { chain } = this.opts
    const config = chain.config
    // Fetch and verify (on worker threads) the next batch while this one is imported.
    const prepare = async (from: number) => {
      const blocks = (await this.fetchRange(peer, from)).map((bytes) => decodeBlock(config, bytes))
      // Only blocks we do not hold need checking: the margin below our head, or a restart from our
      // final block (the peer's chain forks lower), brings back blocks we imported long ago. A few
      // (catching up a slot or two) are cheaper to check inline than to ship to threads. (Starting
      // the threads for every such sync, during a stake flood, took a peer from 200 to 280 MB.)
      const fresh = blocks.filter((b) => !chain.holds(b))
      if (fresh.length >= POOL_MIN_BLOCKS)
        await this.pool.verifyAndRemember(fresh.flatMap((b) => signatureChecks(config, b)))
      return blocks
    }
    const ahead: { from: number; blocks: ReturnType<typeof prepare> }[] = []
    // Near our head when we can: a peer a few blocks ahead shares our chain up to there, and while
    // finality stalls our final block can be hundreds of blocks back (each status exchange fetched
    // and decoded all of them). If its block there is not the child of one we hold, its chain
    // forks lower: we start again from our final block, as before.
    const fromRoot = chain.root().height + 1
    let requested = Math.max(fromRoot, Math.min(chain.head().height, status.headHeight) - NEAR_HEAD_MARGIN)
    let linked = requested === fromRoot
    const fill = () => {
      while (ahead.length < SYNC_AHEAD && requested <= status.headHeight) {
        const blocks = prepare(requested)
        blocks.catch(() => {}) // awaited below; a batch left over when we stop must not be unhandled
        ahead.push({ from: requested, blocks })
        requested += MAX_BLOCKS_PER_REQUEST
      }
    }
    let previous: Block | undefined
    try {
      fill()
      for (let round = 0; round < MAX_ROUNDS && ahead.length > 0; round++) {
        const batch = ahead.shift() as (typeof ahead)[number]
        const blocks = await batch.blocks
        if (blocks.length === 0) {
          // After some blocks: its chain ends here (its head moved back since its status): done.
          if (previous !== undefined) break
          return this.giveUp(peer, `its head at height ${status.headHeight} never came`)
        }
        const broken = brokenResponse(blocks, batch.from)
        if (broken !== undefined) return this.giveUp(peer, `a broken block range: ${broken}`)
        if (!linked) {
          linked = true
          if (!chain.holds({ hashHex: toHex(blocks[0].parent), height: blocks[0].height - 1 })) {
            ahead.length = 0
            requested = chain.root().height + 1
            fill()
            continue
          }
        }
        if (blocks.length < MAX_BLOCKS_PER_REQUEST) {
          // A short answer: the requests beyond it are void; go on from its end (the peer's head
          // may have moved on meanwhile), or stop where its chain ends.
          ahead.length = 0
          requested = blocks.length + batch.from
        }
        fill()
        const stop = this.connects(peer, status, blocks, previous)
        if (stop !== undefined) return stop
        for (const block of blocks) {
          chain.receiveBlock(block, { source: peer.toString() })
          // Not imported (e.g. FUTURE_SLOT by our clock): what follows would not connect either.
          // No back-off either: it is our clock, and the next status exchange should try again.
          if (!chain.holds(block)) return this.giveUp(peer, `block ${block.height} was not imported`, false, false)
        }
        previous = blocks.at(-1)
        this.opts.onProgress?.({ from: peer.toString(), height: chain.head().height, target: status.headHeight })
        // let gossip and slot timers run between batches
        await new Promise((r) => setImmediate(r))
        if (this.closed) break
      }
      return true
    } catch (err) {
      if (err instanceof PosError && err.action === 'REJECT')
        this.opts.network.refuse(peer, `sent an invalid block during sync: ${err.message}`)
      else this.opts.log('debug', `sync from ${peer} stopped: ${(err as Error).message}`)
      return false
    }
  }

  /**
   * Whether a batch's first block links to what we hold: the previous batch's last block, or our
   * finalized block. A conflict with our finalized chain is an offence only where the peer says
   * its own chain is final: a conflicting *non-final* branch is normal after a partition (the
   * peer reorgs to ours once it syncs from us), so we just stop. Undefined: go on.
   */
  private connects(
    peer: PeerId,
    status: Status,
    blocks: readonly Block[],
    previous: Block | undefined,
  ): false | undefined {
    const { chain, network } = this.opts
    const first = blocks[0]
    if (previous !== undefined) {
      if (equalBytes(first.parent, previous.hash)) return undefined
      // Its head changed between two requests (a reorg on its side): not an offence.
      return this.giveUp(peer, 'its chain changed during the sync', false)
    }
    const root = chain.root()
    if (first.height !== root.height + 1 || equalBytes(first.parent, root.hash)) return undefined
    if (first.height <= status.finalizedHeight) {
      // Validators that signed both chains are convicted by these headers (FFG accountability).
      const evidence = chain.inspectForeign(blocks)
      network.refuse(
        peer,
        `its finalized chain conflicts with our finalized block at height ${root.height}${evidence > 0 ? ` (${evidence} validator(s) signed both: evidence taken)` : ''}`,
      )
      return false
    }
    return this.giveUp(
      peer,
      `its head chain (not final there) conflicts with our finalized block ${root.height}`,
      false,
    )
  }

  /** Stop syncing from `peer` (for a while, unless `backoff` is false); `strike`: count it against the peer. */
  private giveUp(peer: PeerId, reason: string, strike = true, backoff = true): false {
    this.opts.log('debug', `range sync from ${peer} stopped: ${reason}`)
    if (this.backoff.size > MAX_BACKOFF_ENTRIES) this.backoff.clear()
    if (backoff) this.backoff.set(peer.toString(), this.opts.now() + SYNC_BACKOFF_MS)
    if (strike) this.opts.network.penalize(peer, reason)
    return false
  }
}

/**
 * What is wrong with a range answer, if anything: an honest peer serves consecutive heights from
 * the one asked for, each block the child of the one before.
 */
export function brokenResponse(blocks: readonly Block[], from: number): string | undefined {
  for (let i = 0; i < blocks.length; i++) {
    if (blocks[i].height !== from + i) return `height ${blocks[i].height} where ${from + i} was asked for`
    if (i > 0 && !equalBytes(blocks[i].parent, blocks[i - 1].hash))
      return `block ${blocks[i].height} is not the child of block ${blocks[i - 1].height}`
  }
  return undefined
}
