import { describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { Chain } from '../../src/core/chain.js'
import { Mempool } from '../../src/core/mempool.js'
import { buildSignedCandidate } from '../../src/core/proposer.js'
import { createReading, createStake } from '../../src/core/records.js'
import { activeStake, decodeState, encodeState } from '../../src/core/state.js'
import { foundingBlock } from '../helpers/blocks.js'
import { testNetwork, testSigners, timeOf } from '../helpers/fixtures.js'

// Short for the test (the default is 256 blocks: a partition longer than it splits the network).
const INACTIVITY_BLOCKS = 32

describe('the inactivity leak', () => {
  it('a silent validator over 1/3 stalls finality only until the leak ejects it; the honest ones, voting on losing blocks too, keep their stake', async () => {
    const net = testNetwork({
      stakeTtlSlots: 600,
      activationDelaySlots: 0,
      minChurn: 10_000,
      inactivityBlocks: INACTIVITY_BLOCKS,
    })
    const [a, b, silent, late] = await testSigners(4, 'leak')
    const key = (s: typeof a) => toHex(s.publicKey)
    const chain = new Chain(net)
    // a 40 and b 30 vote every slot; silent (40, over 1/3 of 110) never does.
    const b1 = foundingBlock(net, a, [
      createStake(net, a, 40, 1),
      createStake(net, b, 30, 1),
      createStake(net, silent, 40, 1),
    ])
    chain.import(b1, timeOf(net, 1))
    // Its stake counts once block 1 is final (the founder's blocks finalize it alone).
    expect(activeStake(net.params, chain.head.state, key(silent), 2)).toBe(0)
    const pools = [new Mempool(), new Mempool(), new Mempool()]
    const all = [a, b, silent]
    let ejectedAt: number | undefined
    let finalAtEjection = 0
    let finalWhenSilenced = 0
    const silentFrom = 8
    for (let slot = 2; slot <= silentFrom + INACTIVITY_BLOCKS + 12; slot++) {
      // A reading now and then: there is always a non-final block with records to vote on.
      if (slot % 5 === 2) for (const p of pools) p.addReading(createReading(net, a, 60 + slot, timeOf(net, slot) - 100))
      // A newcomer (never voting, as a flood's keys) announces 500 during the stall: it waits.
      if (slot === 20) for (const p of pools) p.addStake(createStake(net, late, 500, 1))
      // Everyone proposes on the same head: one block wins, the others are votes later blocks
      // carry. From slot 8 the third validator goes silent: finality has a source with its stake.
      if (slot === silentFrom) {
        finalWhenSilenced = chain.root.height
        expect(activeStake(net.params, chain.head.state, key(silent), slot)).toBe(40)
      }
      const voting = slot < silentFrom ? all : all.slice(0, 2)
      const built = voting.map((s, i) => buildSignedCandidate(chain, pools[i], s, slot))
      for (const blk of built) if (blk !== undefined) chain.import(blk, timeOf(net, slot))
      for (const p of pools) p.pruneFinal(chain)
      const e = chain.head.state.stakes.get(key(silent))
      if (ejectedAt === undefined && e?.ejectedAt !== undefined) {
        ejectedAt = slot
        finalAtEjection = chain.root.height
      }
    }
    // Finality ran while all three voted, then stalled: nothing more was final before the leak,
    // which ejected the silent validator once INACTIVITY_BLOCKS blocks in a row brought no newer
    // justified source.
    expect(finalWhenSilenced).toBeGreaterThanOrEqual(2)
    expect(ejectedAt).toBeDefined()
    expect(finalAtEjection).toBeLessThanOrEqual(finalWhenSilenced + 2)
    expect(ejectedAt).toBeGreaterThanOrEqual(silentFrom + INACTIVITY_BLOCKS - 2)
    const st = chain.head.state
    expect(st.stakes.get(key(silent))?.stake).toBe(0)
    // The waiting newcomer was ejected with it: else its 500 would count once finality resumed
    // (its block final by then) and stall it again.
    expect(st.stakes.get(key(late))).toMatchObject({ stake: 0, counted: 0 })
    expect(st.stakes.get(key(late))?.ejectedAt).toBeDefined()
    expect(st.queue).not.toContain(key(late))
    expect(activeStake(net.params, st, key(silent), chain.head.slot + 1)).toBe(0)
    // The honest validators were recorded taking part (their own blocks, or their votes carried
    // in the other's) and keep their stake.
    for (const s of all.slice(0, 2)) {
      expect(st.stakes.get(key(s))?.ejectedAt).toBeUndefined()
      expect(activeStake(net.params, st, key(s), chain.head.slot + 1)).toBeGreaterThan(0)
    }
    // And finality resumes: links from the old source no longer count the ejected stake.
    expect(chain.root.height).toBeGreaterThan(finalAtEjection + 3)
    // The state (with the new fields) survives its encoding.
    expect(decodeState(encodeState(st))).toEqual({
      ...st,
      stakes: new Map(st.stakes),
      accounts: new Map(st.accounts),
    })
  })

  it('an honest validator that only ever loses the lottery is kept by the votes the winners carry', async () => {
    const net = testNetwork({
      stakeTtlSlots: 600,
      activationDelaySlots: 0,
      minChurn: 10_000,
      inactivityBlocks: INACTIVITY_BLOCKS,
    })
    const [big, small, silent] = await testSigners(3, 'leak2')
    const key = (s: typeof big) => toHex(s.publicKey)
    const chain = new Chain(net)
    const b1 = foundingBlock(net, big, [
      createStake(net, big, 60, 1),
      createStake(net, small, 1, 1),
      createStake(net, silent, 40, 1),
    ])
    chain.import(b1, timeOf(net, 1))
    const pools = [new Mempool(), new Mempool()]
    let smallWon = 0
    let carriedForSmall = 0
    for (let slot = 2; slot <= 2 + 2 * INACTIVITY_BLOCKS; slot++) {
      if (slot % 5 === 2)
        for (const p of pools) p.addReading(createReading(net, big, 60 + slot, timeOf(net, slot) - 100))
      // The small validator's block is imported first, then the big one's (which, at 60 to 1, wins).
      for (const [i, s] of [small, big].entries()) {
        const blk = buildSignedCandidate(chain, pools[i], s, slot)
        if (blk !== undefined) chain.import(blk, timeOf(net, slot))
      }
      const head = chain.head.block
      if (head !== undefined && toHex(head.proposer) === key(small)) {
        smallWon++
      }
      // A block that carries its vote records it (its lastVote becomes that block's height).
      if (
        head?.votes.some((h) => toHex(h.proposer) === key(small)) === true &&
        chain.head.state.stakes.get(key(small))?.lastVote === head.height
      )
        carriedForSmall++
    }
    const st = chain.head.state
    expect(st.stakes.get(key(silent))?.ejectedAt).toBeDefined()
    expect(st.stakes.get(key(small))?.ejectedAt).toBeUndefined()
    expect(st.stakes.get(key(small))?.lastVote ?? 0).toBeGreaterThan(chain.head.height - INACTIVITY_BLOCKS)
    // Its record comes from votes the winners carried (about every 8 blocks while stalled): it
    // won few blocks, if any.
    expect(smallWon).toBeLessThan(INACTIVITY_BLOCKS / 4)
    expect(carriedForSmall).toBeGreaterThanOrEqual(2)
  })
})
