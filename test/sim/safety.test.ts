import { describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { testNetwork, testSigners } from '../helpers/fixtures.js'
import { type Byzantine, Simulator } from './simulator.js'

// FFG safety under Byzantine validators below 1/3, long delays and partitions (issue 11). CI runs
// SIM_SEEDS (default 100) seeds; `npm run sim:safety` runs 1,000.
const SEEDS = Number(process.env.SIM_SEEDS ?? 100)
const FIRST = Number(process.env.SIM_FIRST ?? 1)
const net = testNetwork({ slotMs: 1000, stakeTtlSlots: 400 })

interface Outcome {
  finalHeights: number[]
  conflicts: number
  convicted: number
  /** Honest validators some honest peer holds evidence against: must stay 0. */
  honestConvicted: number
  twins: number
  /** Final blocks an honest peer never announced as canonical (a `block` event): must stay 0. */
  unannounced: number
}

/** Four honest validators (20, 20, 20, 15) and one Byzantine (24: 24.7% of the stake). */
async function run(seed: number): Promise<Outcome> {
  const stakes = [20, 20, 20, 15, 24]
  const signers = await testSigners(stakes.length, `safety${seed % 7}`)
  const byzantine = new Map<number, Byzantine>([
    [4, { equivocate: true, withholdRate: 0.2, lateRate: 0.3, lateSlots: 2 }],
  ])
  // Delays of up to 2.5 slots, 5% loss, and a partition of random length somewhere in the run.
  // Peer 0 founds the network (the others join its chain, as real peers do).
  const sim = await Simulator.create({
    net,
    signers,
    stakes,
    seed,
    maxDelayMs: 2500,
    dropRate: 0.05,
    byzantine,
    founder: 0,
  })
  const cutFrom = 8 + (seed % 11)
  const cutTo = cutFrom + 3 + (seed % 9)
  const sideA = new Set([seed % 4, (seed + 1) % 4])
  await sim.runSlots(1, 40, async (slot) => {
    sim.partition = slot >= cutFrom && slot < cutTo ? (from, to) => sideA.has(from) !== sideA.has(to) : undefined
    await sim.submitReading(slot % 4, 60 + (slot % 100))
  })
  // Then the network calms down (no cut, no loss, delays under half a slot): FFG is live again.
  sim.partition = undefined
  sim.dropRate = 0
  sim.maxDelayMs = 400
  await sim.runSlots(40, 60)
  const honest = [0, 1, 2, 3]
  const chains = await Promise.all(honest.map((i) => sim.finalChain(i)))
  let conflicts = 0
  for (const x of chains)
    for (const y of chains)
      for (let h = 0; h < Math.min(x.length, y.length); h++) if (x[h].hashHex !== y[h].hashHex) conflicts++
  const byzKey = toHex(signers[4].publicKey)
  const convicted = honest.filter((i) => sim.peers[i].chain.isExcluded(byzKey)).length
  // Reorgs, losing candidates, late and lost messages: no honest validator ever looks like an equivocator.
  const honestConvicted = honest.flatMap((i) =>
    honest.filter((j) => sim.peers[i].chain.isExcluded(toHex(signers[j].publicKey))),
  ).length
  const unannounced = honest.reduce((n, i) => n + chains[i].filter((b) => !sim.announced[i].has(b.hashHex)).length, 0)
  return {
    finalHeights: chains.map((c) => c.length),
    conflicts,
    convicted,
    honestConvicted,
    twins: sim.twins.length,
    unannounced,
  }
}

describe('FFG safety in the simulator', () => {
  it(`${SEEDS} seeds: a 24.7% equivocating, withholding, late validator, delays of 2.5 slots, partitions: no conflicting finality`, async () => {
    let convictedRuns = 0
    let minFinal = Number.POSITIVE_INFINITY
    for (let seed = FIRST; seed < FIRST + SEEDS; seed++) {
      const o = await run(seed)
      if (Math.min(...o.finalHeights) <= Number(process.env.SIM_SHOW ?? 5))
        console.log(`seed ${seed}: final heights ${o.finalHeights.join(',')}`)
      expect(o.conflicts, `seed ${seed}`).toBe(0)
      expect(o.honestConvicted, `seed ${seed}`).toBe(0)
      expect(o.unannounced, `seed ${seed}`).toBe(0)
      if (o.twins > 0 && o.convicted === 4) convictedRuns++
      minFinal = Math.min(minFinal, ...o.finalHeights)
    }
    console.log(
      `safety: ${SEEDS} seeds, 0 conflicting final blocks; equivocator convicted by all 4 honest peers in ${convictedRuns} runs; lowest final height ${minFinal}`,
    )
    // Liveness too: the honest 75% keeps finalizing, and the equivocator is caught.
    expect(minFinal).toBeGreaterThan(5)
    expect(convictedRuns).toBeGreaterThan(SEEDS * 0.9)
  }, 1_800_000)
})
