import { describe, expect, it } from 'vitest'
import { createStake } from '../../src/core/records.js'
import { brokenResponse } from '../../src/sync/range-sync.js'
import { createBlock } from '../helpers/blocks.js'
import { testNetwork, testSigners } from '../helpers/fixtures.js'

const net = testNetwork()

describe('range answers', () => {
  it('consecutive heights, each the child of the one before: fine; a gap, a wrong start or a broken link: named', async () => {
    const [a] = await testSigners(1, 'range')
    const chain = [
      createBlock(net, a, {
        height: 5,
        slot: 5,
        parent: new Uint8Array(32),
        readings: [],
        stakes: [createStake(net, a, 1, 1)],
      }),
    ]
    for (let h = 6; h <= 9; h++)
      chain.push(
        createBlock(net, a, {
          height: h,
          slot: h,
          parent: (chain.at(-1) as (typeof chain)[0]).hash,
          readings: [],
          stakes: [],
        }),
      )
    expect(brokenResponse(chain, 5)).toBeUndefined()
    expect(brokenResponse([], 5)).toBeUndefined()
    expect(brokenResponse(chain, 4)).toMatch(/height 5 where 4 was asked for/)
    expect(brokenResponse([chain[0], chain[1], chain[3]], 5)).toMatch(/height 8 where 7/)
    const stranger = createBlock(net, a, {
      height: 7,
      slot: 7,
      parent: new Uint8Array(32).fill(9),
      readings: [],
      stakes: [],
    })
    expect(brokenResponse([chain[0], chain[1], stranger], 5)).toMatch(/block 7 is not the child of block 6/)
  })
})
