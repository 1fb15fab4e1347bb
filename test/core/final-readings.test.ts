import { describe, expect, it } from 'vitest'
import { Chain } from '../../src/core/chain.js'
import type { BlockError } from '../../src/core/errors.js'
import { FinalReadings } from '../../src/core/final-readings.js'
import { type Block, createReading, createStake } from '../../src/core/records.js'
import { foundChain, testNetwork, testSigner, timeOf, voteOn } from '../helpers/fixtures.js'

describe('final readings: the ids the rule "a reading is in a chain once" needs, bounded by time', () => {
  it('forgets a group only once every reading in it is dated before the bound, oldest groups first', () => {
    const f = FinalReadings.from([
      { id: 'a', time: 100 },
      { id: 'b', time: 300 },
    ])
    f.add(['c', 'd'], 250)
    f.add(['e'], 120)
    expect(f.size).toBe(5)
    // The loaded ones form one group (latest 300), the oldest: nothing goes before 301, not even
    // 'e' (120) or 'c', 'd' (250) behind it: kept longer, never shorter.
    expect(f.forgetBefore(260)).toBe(0)
    expect([f.has('a'), f.has('c'), f.has('e')]).toEqual([true, true, true])
    f.add(['g'], 1000)
    expect(f.forgetBefore(301)).toBe(5)
    expect([f.has('a'), f.has('d'), f.has('e'), f.has('g')]).toEqual([false, false, false, true])
    expect(f.size).toBe(1)
  })

  it('a chain forgets a final reading once no block above its root may hold it; such a block is refused all the same', async () => {
    // Readings may be 8 slots old when their block is made.
    const net = testNetwork({ maxReadingAgeMs: 8_000, activationDelaySlots: 0, stakeTtlSlots: 600 })
    const a = await testSigner('fr-a')
    const chain = new Chain(net)
    const blocks: Block[] = foundChain(chain, a, [createStake(net, a, 10, 1)])
    const reading = createReading(net, a, 70, timeOf(net, 6))
    const extend = (slot: number, readings = [] as ReturnType<typeof createReading>[]) => {
      const b = voteOn(chain, a, (blocks.at(-1) as Block).hashHex, slot, { readings })
      chain.import(b, timeOf(net, slot))
      blocks.push(b)
    }
    extend(6, [reading])
    for (let s = 7; s <= 10; s++) extend(s)
    expect(chain.root.slot).toBeGreaterThanOrEqual(6)
    expect(chain.finalReadings.has(reading.idHex)).toBe(true)
    // Still in every future block's window: holding it again is READING_ALREADY_IN_CHAIN.
    const again = (slot: number) => voteOn(chain, a, (blocks.at(-1) as Block).hashHex, slot, { readings: [reading] })
    const codeOf = (slot: number) => {
      try {
        chain.import(again(slot), timeOf(net, slot))
      } catch (err) {
        return (err as BlockError).code
      }
      return 'imported'
    }
    expect(codeOf(11)).toBe('READING_ALREADY_IN_CHAIN')
    for (let s = 11; s <= 20; s++) extend(s)
    // The root's next slot starts more than 8 s after the reading's time: forgotten ...
    expect(chain.finalReadings.has(reading.idHex)).toBe(false)
    // ... and no block can hold it anyway.
    expect(codeOf(21)).toBe('TIME_OUT_OF_RANGE')
  })
})
