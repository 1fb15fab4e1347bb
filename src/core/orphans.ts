import { toHex } from './bytes.js'
import type { Block } from './records.js'

/**
 * Blocks whose parent is not known yet, held (bounded) until the parent arrives. The oldest
 * entries are dropped first when the pool is full.
 */
export class OrphanPool {
  private readonly byParent = new Map<string, Map<string, Block>>()
  private count = 0

  constructor(private readonly max = 1024) {}

  get size(): number {
    return this.count
  }

  add(block: Block): boolean {
    const parent = toHex(block.parent)
    let set = this.byParent.get(parent)
    if (set?.has(block.hashHex)) return false
    if (this.count >= this.max) this.evictOldest()
    if (set === undefined) {
      set = new Map()
      this.byParent.set(parent, set)
    }
    set.set(block.hashHex, block)
    this.count++
    return true
  }

  has(hashHex: string): boolean {
    for (const set of this.byParent.values()) if (set.has(hashHex)) return true
    return false
  }

  /** Remove and return the children waiting for `parentHex`. */
  takeChildren(parentHex: string): Block[] {
    const set = this.byParent.get(parentHex)
    if (set === undefined) return []
    this.byParent.delete(parentHex)
    this.count -= set.size
    return [...set.values()]
  }

  private evictOldest(): void {
    const first = this.byParent.keys().next()
    if (first.done === true) return
    const set = this.byParent.get(first.value) as Map<string, Block>
    const oldest = set.keys().next().value as string
    set.delete(oldest)
    if (set.size === 0) this.byParent.delete(first.value)
    this.count--
  }
}

/**
 * Blocks of a slot our clock has not reached yet (FUTURE_SLOT: our clock may be the slow one),
 * held until it does instead of dropped, so a peer whose clock lags still follows the chain. At
 * most `max` blocks, at most `horizonMs` ahead; when full, the one furthest ahead goes first.
 */
export class EarlyPool {
  private readonly blocks = new Map<string, Block>()

  constructor(
    private readonly max = 64,
    readonly horizonMs = 30_000,
  ) {}

  get size(): number {
    return this.blocks.size
  }

  /** Hold `block` (due at `dueMs`, by our clock); false when known, too far ahead, or the furthest out. */
  add(block: Block, dueMs: number, nowMs: number): boolean {
    if (this.blocks.has(block.hashHex) || dueMs - nowMs > this.horizonMs) return false
    if (this.blocks.size >= this.max) {
      const furthest = [...this.blocks.values()].reduce((a, b) => (b.slot > a.slot ? b : a))
      if (furthest.slot <= block.slot) return false
      this.blocks.delete(furthest.hashHex)
    }
    this.blocks.set(block.hashHex, block)
    return true
  }

  /** Remove and return the blocks of slots up to `slot`, lowest slot first. */
  takeDue(slot: number): Block[] {
    const due = [...this.blocks.values()].filter((b) => b.slot <= slot).sort((a, b) => a.slot - b.slot)
    for (const b of due) this.blocks.delete(b.hashHex)
    return due
  }

  /** The lowest slot held, if any. */
  nextSlot(): number | undefined {
    let min: number | undefined
    for (const b of this.blocks.values()) if (min === undefined || b.slot < min) min = b.slot
    return min
  }
}
