import { toHex } from './bytes.js'
import type { BlockNode, Chain } from './chain.js'
import type { Reading, StakeAnnouncement } from './records.js'

export interface MempoolOptions {
  /** Bound on pending readings; further ones are refused until some become final. */
  readonly maxReadings?: number
}

export interface Pending {
  readonly readings: Reading[]
  readonly stakes: StakeAnnouncement[]
}

/**
 * Records waiting to be in a final block. Nothing leaves the pool when a candidate loses: a record
 * leaves only when the finalized chain holds it (or, for stakes, a newer seq).
 */
export class Mempool {
  private readonly readings = new Map<string, Reading>()
  private readonly stakes = new Map<string, StakeAnnouncement>()
  private readonly maxReadings: number

  constructor(opts: MempoolOptions = {}) {
    this.maxReadings = opts.maxReadings ?? 10_000
  }

  get size(): number {
    return this.readings.size + this.stakes.size
  }

  hasReading(idHex: string): boolean {
    return this.readings.has(idHex)
  }

  /** False when already pending or the pool is full. */
  addReading(r: Reading): boolean {
    if (this.readings.has(r.idHex) || this.readings.size >= this.maxReadings) return false
    this.readings.set(r.idHex, r)
    return true
  }

  /** Forget a reading (one our own candidate could not hold: see ChainService.onSlot). */
  dropReading(idHex: string): boolean {
    return this.readings.delete(idHex)
  }

  /** Keeps the highest seq per validator; false when this one is not newer. */
  addStake(s: StakeAnnouncement): boolean {
    const key = toHex(s.validator)
    const prev = this.stakes.get(key)
    if (prev !== undefined && prev.seq >= s.seq) return false
    this.stakes.set(key, s)
    return true
  }

  /**
   * Records not yet in the chain ending at `tip`, in a deterministic order, within the limits;
   * readings dated after `latestTime` (not valid in the block being built yet) are left for later.
   */
  pending(chain: Chain, tip: BlockNode = chain.head, latestTime = Number.POSITIVE_INFINITY): Pending {
    const p = chain.net.params
    const readings = [...this.readings.values()]
      .filter((r) => r.time <= latestTime && !chain.readingInChain(r.idHex, tip))
      .sort((a, b) => a.time - b.time || (a.idHex < b.idHex ? -1 : 1))
      .slice(0, p.maxReadingsPerBlock)
    const stakes = [...this.stakes.entries()]
      .filter(([key, s]) => s.seq > (tip.state.stakes.get(key)?.seq ?? -1))
      .map(([, s]) => s)
      .slice(0, p.maxStakesPerBlock)
    return { readings, stakes }
  }

  /** Drop what the finalized chain now holds. Returns the dropped ids. */
  pruneFinal(chain: Chain): string[] {
    const dropped: string[] = []
    for (const id of this.readings.keys()) {
      if (chain.finalReadings.has(id)) {
        this.readings.delete(id)
        dropped.push(id)
      }
    }
    for (const [key, s] of this.stakes) {
      if (s.seq <= (chain.root.state.stakes.get(key)?.seq ?? -1)) {
        this.stakes.delete(key)
        dropped.push(s.idHex)
      }
    }
    return dropped
  }
}
