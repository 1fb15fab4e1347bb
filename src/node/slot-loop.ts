import { type ChainConfig, slotAt, slotStart } from '../core/params.js'
import {
  type Block,
  encodeReading,
  encodeStake,
  encodeTransfer,
  type Reading,
  type StakeAnnouncement,
  type Transfer,
} from '../core/records.js'
import type { Topic } from '../network/topics.js'
import type { Logger } from '../util/logger.js'

/** Proposal stagger: at most this many ranks, slotMs/100 each (100 ms at 1 s slots). */
const STAGGER_RANKS = 10
/**
 * How long a validator waits, at most, for the last slot's votes before it builds (a fraction of
 * the slot): a candidate built without them votes from an older source and finalizes nothing.
 */
export const VOTE_WAIT_SLOTS = 0.25
/** Re-gossip unconfirmed own records every this many slots, by default. */
export const REGOSSIP_SLOTS = 4

/** What the slot loop drives (the node's ChainService). */
export interface SlotChain {
  readonly stake: number
  /** This validator's ticket rank at `slot` (0: likely winner), counted up to `cap`. */
  proposalRank(slot: number, cap: number): number
  /** True while the last slot's votes are still arriving (core/proposer.ts, `votesPending`). */
  votesPending?(slot: number): boolean
  /**
   * Renew stake when due, then build a candidate if there is work: `publish` it as soon as it is
   * signed, then import it and return it.
   */
  onSlot(slot: number, publish: (block: Block) => void): Promise<Block | undefined>
  unconfirmed(): { readings: Reading[]; stakes: StakeAnnouncement[]; transfers?: Transfer[] }
  /** Import blocks held because they came before our clock reached their slot. */
  releaseEarly?(): void
}

export interface SlotLoopOptions {
  readonly config: ChainConfig
  readonly chain: SlotChain
  readonly now: () => number
  /** Wait (the stagger); the simulator passes its virtual clock's. */
  readonly sleep: (ms: number) => Promise<void>
  /** `again`: one of our records not yet in the chain, sent again (network/gossip.ts). */
  readonly publish: (topic: Topic, data: Uint8Array, again?: boolean) => void
  /** May this peer propose yet (the join gate)? */
  readonly joined: () => boolean
  /** Called first in every slot (status exchange, join gate). */
  readonly beforeSlot?: (slot: number) => void
  readonly regossipSlots?: number
  readonly log: Logger
}

/**
 * The slot clock: at each slot start, propose (staggered by ticket rank: the likely winner
 * publishes at once, the rest a few ms per rank later, so the candidate that matters most does
 * not queue behind the others on every peer), publish, and re-gossip our unconfirmed records.
 * `tick` is the whole of one slot; the simulator calls it on its virtual clock.
 */
export class SlotLoop {
  private timer: NodeJS.Timeout | undefined
  private closed = false
  private startedSlot: number | undefined
  private lastLateWarning = Number.NEGATIVE_INFINITY
  private running: Promise<void> | undefined

  constructor(private readonly opts: SlotLoopOptions) {}

  start(): void {
    this.startedSlot = slotAt(this.opts.config.params, this.opts.now())
    this.schedule()
  }

  /** No more ticks; resolves once a tick in progress is done (its candidate imported and stored). */
  async stop(): Promise<void> {
    this.closed = true
    clearTimeout(this.timer)
    await this.running
  }

  /**
   * The next slot's tick: the slot after `last`, at once when its start has passed (the tick of
   * `last` ran past it: a vote wait, an import, a busy event loop), or the current slot when more
   * than one went by (a suspended process: a vote for a past slot finalizes nothing). Scheduling
   * from the clock alone after a long tick skipped the next slot, and the vote of a peer every
   * justification needs (the flooded 50% validator of the spam test) with it: finality then took
   * a slot longer.
   */
  private schedule(last?: number): void {
    if (this.closed) return
    const p = this.opts.config.params
    const now = slotAt(p, this.opts.now())
    const next = last === undefined ? now + 1 : Math.max(last + 1, now)
    const delay = Math.max(0, slotStart(p, next) - this.opts.now())
    this.timer = setTimeout(() => {
      this.running = this.tick(next).finally(() => this.schedule(next))
    }, delay)
  }

  /** One slot. Never throws: an error is logged and the next slot comes as usual. */
  async tick(slot: number): Promise<void> {
    if (this.closed) return
    const { opts } = this
    this.startedSlot ??= slot - 1
    this.noteLate(slot)
    try {
      opts.chain.releaseEarly?.()
      opts.beforeSlot?.(slot)
      if (opts.joined()) {
        if (opts.chain.stake > 0) {
          await this.awaitVotes(slot)
          const wait = opts.chain.proposalRank(slot, STAGGER_RANKS) * (opts.config.params.slotMs / 100)
          if (wait > 0) await opts.sleep(wait)
          if (this.closed) return
        }
        await opts.chain.onSlot(slot, (block) => opts.publish('candidates', block.bytes))
      }
      const since = slot - this.startedSlot
      if (since === 1 || since % (opts.regossipSlots ?? REGOSSIP_SLOTS) === 1) this.regossip()
    } catch (err) {
      opts.log('error', `slot ${slot}: ${(err as Error).message}`)
    }
  }

  /**
   * A slot that starts late (its timer held by a busy event loop, or the last tick ran past it):
   * debug from a tenth of a slot, a warning from half (at most one in 10 slots), since a candidate
   * that late may arrive after the next slot's proposers built.
   */
  private noteLate(slot: number): void {
    const { params } = this.opts.config
    const late = this.opts.now() - slotStart(params, slot)
    if (late < params.slotMs / 10) return
    const warn = late >= params.slotMs / 2 && slot - this.lastLateWarning >= 10
    if (warn) this.lastLateWarning = slot
    this.opts.log(
      warn ? 'warn' : 'debug',
      `slot ${slot} started ${late} ms late${warn ? ': this machine is too busy for the slot time, and our candidates may be too late to count' : ''}`,
    )
  }

  /**
   * Wait while the last slot's votes are still arriving, polling every slotMs/100, until
   * VOTE_WAIT_SLOTS into the slot (by the clock, and by count: the simulator's sleep takes no
   * virtual time). The stagger comes after, so the likely winner still publishes first.
   */
  private async awaitVotes(slot: number): Promise<void> {
    const { opts } = this
    const p = opts.config.params
    const step = p.slotMs / 100
    const deadline = slotStart(p, slot) + p.slotMs * VOTE_WAIT_SLOTS
    for (let i = 0; i < VOTE_WAIT_SLOTS * 100; i++) {
      if (this.closed || opts.now() >= deadline || opts.chain.votesPending?.(slot) !== true) return
      await opts.sleep(step)
    }
  }

  private regossip(): void {
    const { readings, stakes, transfers = [] } = this.opts.chain.unconfirmed()
    for (const r of readings) this.opts.publish('readings', encodeReading(r), true)
    for (const s of stakes) this.opts.publish('stakes', encodeStake(s), true)
    for (const t of transfers) this.opts.publish('transfers', encodeTransfer(t), true)
  }
}
