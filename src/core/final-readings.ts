import { Fifo } from '../util/fifo.js'

/**
 * The ids of the readings in final blocks, for the rule that a reading is in a chain once
 * (READING_ALREADY_IN_CHAIN). Bounded by time, not by the chain's length: a block of slot `s` may
 * only hold readings dated from `slotStart(s) - maxReadingAgeMs` (`blockReadingWindow`), and every
 * block still to come is above the root, so a reading dated before the window of the root's next
 * slot can never be in a valid block again and its id is forgotten when the root moves
 * (`forgetBefore`). A peer keeps every id a block above its root could need, whatever its root,
 * so peers with different final heights still judge every block alike.
 */
export class FinalReadings {
  private readonly ids = new Set<string>()
  /** Ids in the order they became final, a group per block, with the latest time among them. */
  private readonly groups = new Fifo<{ readonly until: number; readonly ids: readonly string[] }>()

  /** Ids known with their times (a restart: the store's index), oldest first, in groups. */
  static from(entries: Iterable<{ readonly id: string; readonly time: number }>): FinalReadings {
    const out = new FinalReadings()
    const sorted = [...entries].sort((a, b) => a.time - b.time)
    for (let i = 0; i < sorted.length; i += 1024) {
      const chunk = sorted.slice(i, i + 1024)
      out.add(
        chunk.map((e) => e.id),
        chunk[chunk.length - 1].time,
      )
    }
    return out
  }

  get size(): number {
    return this.ids.size
  }

  has(id: string): boolean {
    return this.ids.has(id)
  }

  /** The readings of one newly final block; `until` is the latest time among them. */
  add(ids: readonly string[], until: number): void {
    if (ids.length === 0) return
    for (const id of ids) this.ids.add(id)
    this.groups.push({ until, ids })
  }

  /**
   * Forget the ids of groups whose readings are all dated before `earliest`, oldest groups first
   * (a later group that is also that old waits for those before it: kept longer, never shorter).
   * Returns how many ids were forgotten.
   */
  forgetBefore(earliest: number): number {
    let forgotten = 0
    for (let g = this.groups.peek(); g !== undefined && g.until < earliest; g = this.groups.peek()) {
      for (const id of g.ids) if (this.ids.delete(id)) forgotten++
      this.groups.shift()
    }
    return forgotten
  }
}
