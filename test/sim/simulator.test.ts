import { describe, expect, it } from 'vitest'
import { addressOf } from '../../src/core/crypto.js'
import { testNetwork, testSigners } from '../helpers/fixtures.js'
import { Simulator } from './simulator.js'

const net = testNetwork({ slotMs: 1000, stakeTtlSlots: 400 })

async function runScenario(seed: number, dropRate: number, slots: number) {
  const stakes = [10, 20, 30, 40]
  const signers = await testSigners(stakes.length, `sim${seed}`)
  const sim = await Simulator.create({ net, signers, stakes, seed, maxDelayMs: 400, dropRate })
  let n = 0
  await sim.runSlots(1, slots, async (slot) => {
    // two readings per slot at random peers
    for (let k = 0; k < 2; k++)
      await sim.submitReading((slot * 7 + k * 3 + n++) % stakes.length, 40 + ((slot + k) % 150))
  })
  // Input stops; the network heals (no drops) and gets a few quiet slots.
  sim.dropRate = 0
  await sim.runSlots(slots, slots + 8)
  return { sim, stakes, signers }
}

describe('chain simulator (acceptance properties without a network)', () => {
  for (const [seed, drop] of [
    [1, 0],
    [2, 0.1],
    [3, 0.3],
  ] as const) {
    it(`seed ${seed}, ${drop * 100}% drops, delays up to 0.4 slot: agreement, every reading exactly once, heads equal`, async () => {
      const { sim, stakes } = await runScenario(seed, drop, 120)
      const chains = await Promise.all(sim.peers.map((_, i) => sim.finalChain(i)))
      // Agreement: every final chain is a prefix of the longest.
      const longest = chains.reduce((a, b) => (b.length > a.length ? b : a))
      for (const c of chains) {
        expect(c.length).toBeGreaterThan(100)
        for (const [h, b] of c.entries()) expect(b.hashHex).toBe(longest[h].hashHex)
      }
      // Heads equal after input stops.
      const heads = new Set(sim.peers.map((p) => p.chain.head.hashHex))
      expect(heads.size).toBe(1)
      // Every submitted reading exactly once in the final chain.
      const counts = new Map<string, number>()
      for (const b of longest) for (const r of b.readings) counts.set(r.idHex, (counts.get(r.idHex) ?? 0) + 1)
      for (const id of sim.submitted) expect(counts.get(id), id).toBe(1)
      expect(counts.size).toBe(sim.submitted.length)
      // Nothing honest was rejected.
      expect(sim.rejected.filter((e) => e.action === 'REJECT')).toEqual([])
      // Every validator won some blocks, the biggest the most.
      const wins = stakes.map(
        (_, i) => longest.filter((b) => addressOf(b.proposer) === addressOf(sim.peers[i].signer.publicKey)).length,
      )
      expect(Math.min(...wins)).toBeGreaterThan(0)
      expect(wins[3]).toBeGreaterThan(wins[0])
    })
  }

  it('fairness over a long run: win shares follow stake shares (chi-square, p >= 0.001)', async () => {
    const { sim, stakes } = await runScenario(11, 0.05, 600)
    const chain = await sim.finalChain(0)
    const total = stakes.reduce((a, b) => a + b, 0)
    const wins = stakes.map(
      (_, i) => chain.filter((b) => addressOf(b.proposer) === addressOf(sim.peers[i].signer.publicKey)).length,
    )
    const n = wins.reduce((a, b) => a + b, 0)
    const chi = wins.reduce((acc, w, i) => acc + (w - (n * stakes[i]) / total) ** 2 / ((n * stakes[i]) / total), 0)
    // 3 degrees of freedom at p = 0.001
    expect(chi).toBeLessThan(16.266)
  }, 120_000)
})
