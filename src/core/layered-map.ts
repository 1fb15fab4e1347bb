/** Layers before a new one is made on a flat copy instead (bounds lookups to this many steps). */
export const MAX_LAYER_DEPTH = 16

/**
 * A map that is its parent plus the entries set on top of it: what each block's state does to the
 * stake table and the accounts of its parent's. A block that changes ten entries of a table of
 * 60,000 costs ten entries, not a copy of the table (a copy per non-final block grew memory by
 * 1.3 MB a slot under a stake flood: docs/PERFORMANCE.md). Every MAX_LAYER_DEPTH layers the
 * layers are compacted, so a lookup walks a bounded number of them: merged into one layer over
 * the same flat table while their changes are small next to it (a quarter of its size), else
 * copied flat. The compacted map is kept on the layer it was made from, so the children of one
 * block (competing candidates) share it.
 *
 * Reads behave exactly as a `new Map(parent)` with the same `set` and `delete` calls would,
 * iteration order included (the parent's keys in its order, then the new ones; a key deleted and
 * set again comes last, as in a Map).
 * Writable only while its block is applied; immutable from then on, like every state.
 */
export class LayeredMap<V> implements ReadonlyMap<string, V> {
  private readonly own = new Map<string, V>()
  /** Keys of the base deleted in this layer (set again: they live in `own`, at its end). */
  private readonly deleted = new Set<string>()
  private count: number
  /** What the layers on top of this one start from once it is MAX_LAYER_DEPTH deep (made once). */
  private compacted?: ReadonlyMap<string, V>

  private constructor(
    private readonly base: ReadonlyMap<string, V>,
    private readonly depth: number,
  ) {
    this.count = base.size
  }

  /** A new, writable layer on top of `parent`. */
  static over<V>(parent: ReadonlyMap<string, V>): LayeredMap<V> {
    if (!(parent instanceof LayeredMap)) return new LayeredMap(parent, 1)
    if (parent.depth < MAX_LAYER_DEPTH) return new LayeredMap(parent, parent.depth + 1)
    parent.compacted ??= parent.compact()
    const base = parent.compacted
    return new LayeredMap(base, base instanceof LayeredMap ? base.depth + 1 : 1)
  }

  /**
   * This map as one layer over the flat table at the bottom of its layers, with every layer's
   * changes merged, or a flat copy when those changes are more than a quarter of the table.
   */
  private compact(): ReadonlyMap<string, V> {
    const layers: LayeredMap<V>[] = []
    let bottom: ReadonlyMap<string, V> = this
    while (bottom instanceof LayeredMap) {
      layers.unshift(bottom)
      bottom = bottom.base
    }
    // Bottom-up: keys of the bottom deleted above it (their place in the order is gone), keys
    // changed in place, and the keys new above the bottom in the order they iterate.
    const moved = new Set<string>()
    const changed = new Set<string>()
    const order = new Set<string>()
    for (const layer of layers) {
      for (const k of layer.deleted) {
        order.delete(k)
        if (bottom.has(k)) moved.add(k)
      }
      for (const k of layer.own.keys()) {
        if (layer.deleted.has(k) || !layer.base.has(k)) {
          order.delete(k)
          order.add(k)
        } else changed.add(k)
      }
    }
    if (moved.size + changed.size + order.size > bottom.size / 4) return new Map(this)
    const merged = new LayeredMap(bottom, 1)
    for (const k of moved) merged.deleted.add(k)
    for (const k of changed) if (!moved.has(k) && bottom.has(k)) merged.own.set(k, this.get(k) as V)
    for (const k of order) merged.own.set(k, this.get(k) as V)
    merged.count = this.count
    return merged
  }

  get size(): number {
    return this.count
  }

  get(key: string): V | undefined {
    const v = this.own.get(key)
    return v !== undefined || this.deleted.has(key) ? v : this.base.get(key)
  }

  has(key: string): boolean {
    return this.own.has(key) || (!this.deleted.has(key) && this.base.has(key))
  }

  delete(key: string): boolean {
    if (!this.has(key)) return false
    this.own.delete(key)
    if (this.base.has(key)) this.deleted.add(key)
    this.count--
    return true
  }

  set(key: string, value: V): this {
    if (!this.has(key)) this.count++
    this.own.set(key, value)
    return this
  }

  *entries(): MapIterator<[string, V]> {
    for (const [k, v] of this.base.entries()) {
      if (this.deleted.has(k)) continue
      const mine = this.own.get(k)
      yield [k, mine !== undefined ? mine : v]
    }
    for (const [k, v] of this.own) if (!this.base.has(k) || this.deleted.has(k)) yield [k, v]
  }

  *keys(): MapIterator<string> {
    for (const [k] of this.entries()) yield k
  }

  *values(): MapIterator<V> {
    for (const [, v] of this.entries()) yield v
  }

  [Symbol.iterator](): MapIterator<[string, V]> {
    return this.entries()
  }

  forEach(fn: (value: V, key: string, map: ReadonlyMap<string, V>) => void, thisArg?: unknown): void {
    for (const [k, v] of this.entries()) fn.call(thisArg, v, k, this)
  }
}
