import { readFileSync } from 'node:fs'
import { beforeAll, describe, expect, it } from 'vitest'
import { grindingShare } from '../../bench/grinding-model.js'
import { toHex } from '../../src/core/bytes.js'
import { Chain } from '../../src/core/chain.js'
import type { Signer } from '../../src/core/crypto.js'
import { BlockError } from '../../src/core/errors.js'
import { nextMix, RevealChain } from '../../src/core/randao.js'
import { type Block, createReading, createStake, createBlock as signAsIs } from '../../src/core/records.js'
import { createBlock, foundingBlock } from '../helpers/blocks.js'
import { testNetwork, testSigners, timeOf, voteOn } from '../helpers/fixtures.js'

const net = testNetwork()
const fromHex = (h: string) => new Uint8Array(Buffer.from(h, 'hex'))
const vectors = JSON.parse(readFileSync('test/vectors/randao.json', 'utf8')) as {
  seed: string
  length: number
  commit: string
  values: string[]
  parentMix: string
  reveals: string[]
  mixes: string[]
}

let a: Signer
let b: Signer

beforeAll(async () => {
  ;[a, b] = await testSigners(2, 'randao')
})

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BlockError)
    expect((err as BlockError).code).toBe(code)
    return
  }
  expect.unreachable(`expected ${code}`)
}

/** a (stake 60) and b (stake 40) registered in b1 by a. */
function setup(): { chain: Chain; b1: Block } {
  const chain = new Chain(net)
  const b1 = foundingBlock(net, a, [createStake(net, a, 60, 1), createStake(net, b, 40, 1)])
  chain.import(b1, timeOf(net, 1))
  return { chain, b1 }
}

describe('RANDAO reveals and the lottery seed', () => {
  it('matches the independent test vectors (hash chain, commit, reveals, mix)', () => {
    const chain = new RevealChain(fromHex(vectors.seed), vectors.length)
    expect(toHex(chain.commit)).toBe(vectors.commit)
    let point = chain.commit
    let mix: Uint8Array = fromHex(vectors.parentMix)
    for (const [i, expected] of vectors.reveals.entries()) {
      const reveal = chain.revealFor(point) as Uint8Array
      expect(toHex(reveal)).toBe(expected)
      mix = nextMix(mix, reveal)
      expect(toHex(mix)).toBe(vectors.mixes[i])
      point = reveal
    }
    expect(chain.revealFor(fromHex(vectors.values[0]))).toBeUndefined() // the seed: used up
  })

  it('a block must reveal the one preimage of its proposer’s point: a wrong or skipped reveal is refused', () => {
    const { chain, b1 } = setup()
    const good = voteOn(chain, a, b1.hashHex, 2)
    // Two steps down the chain (sha256(sha256(reveal)) = point): a valid chain value, not the next one.
    const skip = new RevealChain(fromHex(vectors.seed), 2)
    expectCode(
      () => chain.import(voteOn(chain, a, b1.hashHex, 2, { reveal: skip.commit }), timeOf(net, 2)),
      'BAD_REVEAL',
    )
    expectCode(
      () => chain.import(voteOn(chain, a, b1.hashHex, 2, { reveal: new Uint8Array(32) }), timeOf(net, 2)),
      'BAD_REVEAL',
    )
    expect(chain.import(good, timeOf(net, 2)).node.state.stakes.get(toHex(a.publicKey))?.point).toEqual(good.reveal)
  })

  it('the seed the next slot draws on does not depend on what the block holds: 64 versions, one mix', () => {
    const { chain, b1 } = setup()
    const mixes = new Set<string>()
    const hashes = new Set<string>()
    for (let v = 0; v < 64; v++) {
      const version = voteOn(chain, a, b1.hashHex, 2, { readings: [createReading(net, b, 60 + v, timeOf(net, 1))] })
      hashes.add(version.hashHex)
      mixes.add(toHex(chain.import(version, timeOf(net, 2)).node.state.mix))
    }
    expect(hashes.size).toBe(64)
    expect(mixes.size).toBe(1)
  })

  it('records must be in canonical order: the proposer has no choice of order either', () => {
    const { chain, b1 } = setup()
    const readings = [createReading(net, b, 70, timeOf(net, 1)), createReading(net, b, 71, timeOf(net, 1))].sort(
      (x, y) => (x.idHex < y.idHex ? 1 : -1),
    )
    const block = voteOn(chain, a, b1.hashHex, 2)
    // The same block with its readings in descending id order, signed as is: refused.
    const unordered = signAsIs(net, a, { ...block, readings, stakes: [] })
    expectCode(() => chain.import(unordered, timeOf(net, 2)), 'NOT_CANONICAL_ORDER')
    // In ascending order (what the proposer and the test helper make): imported.
    const ordered = createBlock(net, a, { ...block, readings, stakes: [] })
    expect(ordered.readings.map((r) => r.idHex)).toEqual([...readings].reverse().map((r) => r.idHex))
    expect(chain.import(ordered, timeOf(net, 2)).node.block?.readings).toHaveLength(2)
  })

  it('grinding: a 10% validator trying 64 versions of each block it wins gains nothing (20,000 rounds)', () => {
    const rounds = 20_000
    const ground = grindingShare({ rounds, seed: 'mix', strategy: 'content', versions: 64 })
    const sd = Math.sqrt((0.1 * 0.9) / rounds)
    // 10% of the blocks, within the noise of 20,000 draws (95%: +-0.42 points).
    expect(ground.share).toBeLessThan(0.105)
    expect(Math.abs(ground.share - 0.1)).toBeLessThan(3 * sd)
    // The same harness on the old seed (the parent hash) shows the attack it measures.
    expect(grindingShare({ rounds: 1000, seed: 'hash', strategy: 'content', versions: 64 }).share).toBeGreaterThan(0.9)
  }, 60_000)
})
