import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { utf8 } from '../../src/core/bytes.js'
import { sha256 } from '../../src/core/crypto.js'
import { compareEntrants, drawFor, lotteryWinner, negLnFixed, rankEntrants, ticketFor } from '../../src/core/lottery.js'
import lotteryVectors from '../vectors/lottery.json' with { type: 'json' }
import lnVectors from '../vectors/negln.json' with { type: 'json' }

describe('fixed-point ln', () => {
  it('matches an independent 80-digit computation to the last unit', () => {
    for (const c of lnVectors.cases) {
      const diff = negLnFixed(BigInt(c.n)) - BigInt(c.negLn)
      expect(diff >= -1n && diff <= 1n, `n=${c.n} diff=${diff}`).toBe(true)
    }
  })

  it('is monotone: a larger draw never gets a larger -ln', () => {
    fc.assert(
      fc.property(fc.bigInt({ min: 1n, max: 2n ** 64n - 1n }), (n) => {
        expect(negLnFixed(n) >= negLnFixed(n + 1n)).toBe(true)
      }),
      { numRuns: 3000, seed: 1 },
    )
  })
})

describe('lottery test vectors', () => {
  for (const v of lotteryVectors) {
    it(v.name, () => {
      const parent = Buffer.from(v.parent, 'hex')
      const entrants = v.entrants.map((e, i) => {
        const proposer = Buffer.from(e.proposer, 'hex')
        expect(drawFor(parent, proposer).toString()).toBe(e.draw)
        expect(ticketFor(parent, proposer).toString()).toBe(e.ln)
        return { ticket: BigInt(e.ln), weight: e.stake, hash: Buffer.from(e.blockHash, 'hex'), i }
      })
      expect(rankEntrants(entrants).map((e) => e.i)).toEqual(v.ranking)
    })
  }
})

/** Win counts over `rounds` rounds, each with a fresh seed derived from `seed`. */
function simulate(stakes: number[], rounds: number, seed: string): number[] {
  const proposers = stakes.map((_, i) => sha256(utf8(`${seed}/proposer/${i}`)))
  const wins = stakes.map(() => 0)
  for (let r = 0; r < rounds; r++) {
    const parent = sha256(utf8(`${seed}/round/${r}`))
    const entrants = stakes.map((w, i) => ({
      ticket: ticketFor(parent, proposers[i]),
      weight: w,
      hash: proposers[i],
      i,
    }))
    wins[(lotteryWinner(entrants) as { i: number }).i]++
  }
  return wins
}

function chiSquare(observed: number[], expectedShares: number[]): number {
  const n = observed.reduce((a, b) => a + b, 0)
  return observed.reduce((acc, o, i) => acc + (o - n * expectedShares[i]) ** 2 / (n * expectedShares[i]), 0)
}

describe('fairness', () => {
  it('20,000 rounds at stakes 10/30/60: shares within 1.5 points, chi-square passes at p >= 0.001', () => {
    const stakes = [10, 30, 60]
    const rounds = 20_000
    const wins = simulate(stakes, rounds, 'fairness-1')
    const shares = stakes.map((s) => s / 100)
    wins.forEach((w, i) => {
      expect(Math.abs(w / rounds - shares[i])).toBeLessThan(0.015)
    })
    // Critical value of chi-square with 2 degrees of freedom at p = 0.001.
    expect(chiSquare(wins, shares)).toBeLessThan(13.816)
  })

  it('the chi-square test detects a biased lottery (it can fail)', () => {
    // Same draws, but weights 10/30/60 presented as 20/30/50: must be refused as 10/30/60.
    const wins = simulate([20, 30, 50], 20_000, 'fairness-1')
    expect(chiSquare(wins, [0.1, 0.3, 0.6])).toBeGreaterThan(13.816)
  })

  it('stakes up to 10^15 cost the same and keep proportions', () => {
    const wins = simulate([1e15, 3e15 - 1, 10], 3000, 'fairness-big')
    expect(wins[2]).toBe(0)
    expect(Math.abs(wins[0] / 3000 - 0.25)).toBeLessThan(0.04)
  })
})

describe('subset consistency', () => {
  it('the winner of a set is the winner of every subset that contains it', () => {
    const entrant = fc.record({
      proposer: fc.uint8Array({ minLength: 32, maxLength: 32 }),
      weight: fc.integer({ min: 1, max: 1_000_000 }),
    })
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 32, maxLength: 32 }),
        fc.uniqueArray(entrant, {
          minLength: 1,
          maxLength: 12,
          selector: (e) => Buffer.from(e.proposer).toString('hex'),
        }),
        fc.array(fc.boolean(), { minLength: 12, maxLength: 12 }),
        (parent, raw, mask) => {
          const all = raw.map((e) => ({ ticket: ticketFor(parent, e.proposer), weight: e.weight, hash: e.proposer }))
          const winner = lotteryWinner(all)
          const subset = all.filter((e, i) => e === winner || mask[i])
          expect(lotteryWinner(subset)).toBe(winner)
          // and ranking agrees with pairwise comparison
          const ranked = rankEntrants(all)
          for (let i = 1; i < ranked.length; i++) expect(compareEntrants(ranked[i - 1], ranked[i])).toBeLessThan(0)
        },
      ),
      { numRuns: 500, seed: 3 },
    )
  })
})
