import { type ChainConfig, slotStart } from '../core/params.js'

/** Offsets kept, and how many before the first look. */
const SAMPLES = 32
const FIRST_LOOK = 8
/** At most one warning per this long. */
const WARN_EVERY_MS = 60_000

/**
 * Watches how early or late other peers' candidates arrive by our clock. Honest candidates are
 * published at their slot's start (plus up to a tenth of a slot of stagger) and arrive within a
 * few hundred ms, so a median arrival well before the slot starts means our clock is slow, and
 * more than a slot after it means our clock is fast (or the network is very slow). Nobody is
 * punished for it: the user is told, since a clock off by more than maxClockDriftMs makes our
 * blocks and readings look early or late to everyone else.
 */
export class ClockMonitor {
  private readonly offsets: number[] = []
  private lastWarning = Number.NEGATIVE_INFINITY

  constructor(
    private readonly config: ChainConfig,
    private readonly now: () => number,
    private readonly warn: (message: string, offsetMs: number) => void,
  ) {}

  /** A candidate of `slot` arrived by gossip now. */
  sample(slot: number): void {
    const now = this.now()
    this.offsets.push(now - slotStart(this.config.params, slot))
    if (this.offsets.length > SAMPLES) this.offsets.shift()
    const m = this.estimate()
    if (m === undefined || now - this.lastWarning < WARN_EVERY_MS) return
    const p = this.config.params
    if (m < -p.maxClockDriftMs / 2) {
      this.lastWarning = now
      this.warn(
        `this machine's clock looks about ${Math.round(-m)} ms slow: other peers' blocks arrive before their slot starts here (sync the clock, e.g. with NTP)`,
        m,
      )
    } else if (m > p.slotMs) {
      this.lastWarning = now
      this.warn(
        `this machine's clock looks about ${Math.round(m)} ms fast (or the network is slow): other peers' blocks arrive ${Math.round(m)} ms after their slot starts here; our blocks and readings look early to them (sync the clock, e.g. with NTP)`,
        m,
      )
    }
  }

  /** Median arrival offset (ms after the slot start), once enough candidates were seen. */
  estimate(): number | undefined {
    if (this.offsets.length < FIRST_LOOK) return undefined
    const sorted = [...this.offsets].sort((a, b) => a - b)
    return sorted[Math.floor(sorted.length / 2)]
  }
}
