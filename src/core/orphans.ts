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
