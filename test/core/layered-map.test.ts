import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { LayeredMap, MAX_LAYER_DEPTH } from '../../src/core/layered-map.js'

describe('LayeredMap (the state tables of a block over its parent)', () => {
  it('reads exactly as a copied Map with the same sets and deletes would, in the same order, through deep and branching layers', () => {
    fc.assert(
      fc.property(
        fc.array(
          fc.array(fc.tuple(fc.integer({ min: 0, max: 40 }), fc.integer(), fc.integer({ min: 0, max: 3 })), {
            maxLength: 8,
          }),
          {
            minLength: 1,
            maxLength: 3 * MAX_LAYER_DEPTH,
            size: 'max',
          },
        ),
        fc.integer({ min: 0, max: 3 * MAX_LAYER_DEPTH }),
        // A flat table underneath: small (every compaction copies it flat) or large next to the
        // changes (compactions merge the layers over it).
        fc.integer({ min: 0, max: 400 }),
        (layers, branchAt, tableSize) => {
          const table = new Map(Array.from({ length: tableSize }, (_, i) => [`k${i}`, i] as const))
          let lm: ReadonlyMap<string, number> = table
          let ref = new Map(table)
          const kept: [ReadonlyMap<string, number>, Map<string, number>][] = []
          for (const sets of layers) {
            const next = LayeredMap.over(lm)
            const nextRef = new Map(ref)
            for (const [k, v, op] of sets) {
              // One op in four a delete (of a key that may or may not be there).
              if (op === 0) expect(next.delete(`k${k}`)).toBe(nextRef.delete(`k${k}`))
              else {
                next.set(`k${k}`, v)
                nextRef.set(`k${k}`, v)
              }
            }
            kept.push([next, nextRef])
            lm = next
            ref = nextRef
          }
          // Two siblings on an earlier layer (sharing its compaction) must not see, nor change,
          // what came after it, nor each other.
          const [parent, parentRef] = kept[Math.min(branchAt, kept.length - 1)]
          const sibling = LayeredMap.over(parent)
          sibling.set('k0', -1)
          sibling.delete('k1')
          const siblingRef = new Map(parentRef).set('k0', -1)
          siblingRef.delete('k1')
          const other = LayeredMap.over(parent)
          other.set('k1', -2)
          const otherRef = new Map(parentRef).set('k1', -2)
          for (const [m, r] of [...kept, [sibling, siblingRef] as const, [other, otherRef] as const]) {
            expect([...m.entries()]).toEqual([...r.entries()])
            expect([...m.keys()]).toEqual([...r.keys()])
            expect(m.size).toBe(r.size)
            for (let k = 0; k <= 41; k++) {
              expect(m.get(`k${k}`)).toBe(r.get(`k${k}`))
              expect(m.has(`k${k}`)).toBe(r.has(`k${k}`))
            }
          }
        },
      ),
      { numRuns: 200 },
    )
  })
})
