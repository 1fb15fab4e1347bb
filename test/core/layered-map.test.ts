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
          },
        ),
        fc.integer({ min: 0, max: 5 }),
        (layers, branchAt) => {
          let lm: ReadonlyMap<string, number> = new Map()
          let ref = new Map<string, number>()
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
          // A sibling on an earlier layer must not see, nor change, what came after it.
          const [parent, parentRef] = kept[Math.min(branchAt, kept.length - 1)]
          const sibling = LayeredMap.over(parent)
          sibling.set('k0', -1)
          const siblingRef = new Map(parentRef).set('k0', -1)
          for (const [m, r] of [...kept, [sibling, siblingRef] as const]) {
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
