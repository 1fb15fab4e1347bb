/** Layers before a new one is made on a flat copy instead (bounds lookups to this many steps). */
export const MAX_LAYER_DEPTH = 16

/**
 * A map that is its parent plus the entries set on top of it: what each block's state does to the
 * stake table and the accounts of its parent's. A block that changes ten entries of a table of
 * 60,000 costs ten entries, not a copy of the table (a copy per non-final block grew memory by
 * 1.3 MB a slot under a stake flood: docs/PERFORMANCE.md). Every MAX_LAYER_DEPTH layers the
 * parent is copied flat once, so a lookup walks at most that many layers.
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

  private constructor(
    private readonly base: ReadonlyMap<string, V> | undefined,
    private readonly depth: number,
  ) {
    this.count = base?.size ?? 0
  }

  /** A new, writable layer on top of `parent`. */
  static over<V>(parent: ReadonlyMap<string, V>): LayeredMap<V> {
    const depth = parent instanceof LayeredMap ? parent.depth + 1 : 1
    if (depth > MAX_LAYER_DEPTH) return new LayeredMap(new Map(parent), 1)
    return new LayeredMap(parent, depth)
  }

  get size(): number {
    return this.count
  }

  get(key: string): V | undefined {
    const v = this.own.get(key)
    return v !== undefined || this.deleted.has(key) ? v : this.base?.get(key)
  }

  has(key: string): boolean {
    return this.own.has(key) || (!this.deleted.has(key) && (this.base?.has(key) ?? false))
  }

  delete(key: string): boolean {
    if (!this.has(key)) return false
    this.own.delete(key)
    if (this.base?.has(key) === true) this.deleted.add(key)
    this.count--
    return true
  }

  set(key: string, value: V): this {
    if (!this.has(key)) this.count++
    this.own.set(key, value)
    return this
  }

  *entries(): MapIterator<[string, V]> {
    if (this.base === undefined) {
      yield* this.own.entries()
      return
    }
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
