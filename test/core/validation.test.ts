import { beforeAll, describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { Chain } from '../../src/core/chain.js'
import type { Signer } from '../../src/core/crypto.js'
import { encodeCanonical } from '../../src/core/encoding.js'
import { BlockError, RecordError } from '../../src/core/errors.js'
import { makeChainConfig } from '../../src/core/params.js'
import { type Block, createReading, createStake, decodeBlock, type Reading } from '../../src/core/records.js'
import { activeStake } from '../../src/core/state.js'
import { validateStake } from '../../src/core/validation.js'
import { createBlock } from '../helpers/blocks.js'
import { testNetwork, testSigner, timeOf, voteOn } from '../helpers/fixtures.js'

const net = testNetwork({ maxReadingsPerBlock: 8, maxStakesPerBlock: 4, maxBlockBytes: 4096 })

let a: Signer
let b: Signer
let chain: Chain
let b1: Block

beforeAll(async () => {
  a = await testSigner('a')
  b = await testSigner('b')
})

/** A chain with one block at slot 10 by `a` (stake 100) holding one reading. */
function setup(): { reading: Reading } {
  chain = new Chain(net)
  const reading = createReading(net, a, 70, timeOf(net, 9))
  b1 = createBlock(net, a, {
    height: 1,
    slot: 10,
    parent: net.id,
    readings: [reading],
    stakes: [createStake(net, a, 100, 1)],
  })
  chain.import(b1, timeOf(net, 10))
  return { reading }
}

function expectCode(fn: () => unknown, code: string, action = 'REJECT'): void {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BlockError)
    expect((err as BlockError).code).toBe(code)
    expect((err as BlockError).action).toBe(action)
    return
  }
  expect.unreachable(`expected ${code}`)
}

const child = (over: Partial<Parameters<typeof createBlock>[2]> = {}, signer: Signer = a) =>
  createBlock(net, signer, { height: 2, slot: 11, parent: b1.hash, readings: [], stakes: [], ...over })

describe('block validation: one test per rule', () => {
  it('accepts a valid child', () => {
    setup()
    const r = chain.import(child(), timeOf(net, 11))
    expect(r.head.height).toBe(2)
  })

  it('wrong height', () => {
    setup()
    expectCode(() => chain.import(child({ height: 3 }), timeOf(net, 11)), 'WRONG_HEIGHT')
  })

  it('unknown parent (ignored, to be fetched)', () => {
    setup()
    expectCode(
      () => chain.import(child({ parent: new Uint8Array(32).fill(9) }), timeOf(net, 11)),
      'UNKNOWN_PARENT',
      'IGNORE',
    )
  })

  it('slot not after the parent', () => {
    setup()
    expectCode(() => chain.import(child({ slot: 10 }), timeOf(net, 11)), 'SLOT_NOT_AFTER_PARENT')
  })

  it('slot too far ahead of the local clock', () => {
    setup()
    expectCode(() => chain.import(child({ slot: 13 }), timeOf(net, 11)), 'FUTURE_SLOT', 'IGNORE')
  })

  it('bad signature', () => {
    setup()
    const good = child()
    const sig = new Uint8Array(good.signature)
    sig[0] ^= 1
    expectCode(() => chain.import({ ...good, signature: sig }, timeOf(net, 11)), 'INVALID_SIGNATURE')
  })

  it('missing signature (zero bytes) is refused at decoding', () => {
    setup()
    const good = child()
    const tuple = [2, 11, b1.hash, a.publicKey, [net.id, 0], good.reveal, [], [], [], [], [], new Uint8Array(0)]
    expect(() => decodeBlock(net, encodeCanonical(tuple))).toThrow(/BAD_FIELD/)
    // The same tuple with the real signature decodes and imports: only the signature was wrong.
    const whole = decodeBlock(net, encodeCanonical([...tuple.slice(0, 11), good.signature]))
    expect(whole.hashHex).toBe(good.hashHex)
    expect(chain.import(whole, timeOf(net, 11)).node.hashHex).toBe(good.hashHex)
  })

  it('tampered proposer field: the hash covers the proposer, so the signature no longer matches', () => {
    setup()
    const good = child()
    const tampered = encodeCanonical([
      2,
      11,
      b1.hash,
      b.publicKey,
      [net.id, 0],
      good.reveal,
      [],
      [],
      [],
      [],
      [],
      good.signature,
    ])
    expectCode(() => chain.import(decodeBlock(net, tampered), timeOf(net, 11)), 'INVALID_SIGNATURE')
  })

  it('hash mismatch when fetched by hash', () => {
    setup()
    expectCode(() => chain.import(child(), timeOf(net, 11), new Uint8Array(32)), 'HASH_MISMATCH')
  })

  it('proposer with no weight', () => {
    setup()
    expectCode(() => chain.import(child({}, b), timeOf(net, 11)), 'NO_WEIGHT')
  })

  it('the join rule (a proposer with its own announcement has weight) holds only on a chain with no active stake', () => {
    // On genesis (no stake anywhere): b founds a network with its own announcement.
    const fresh = new Chain(net)
    const founder = createBlock(net, b, {
      height: 1,
      slot: 10,
      parent: net.id,
      readings: [],
      stakes: [createStake(net, b, 30, 1)],
    })
    expect(fresh.import(founder, timeOf(net, 10)).node.weight).toBe(30)
    // Next to an active validator (a): a fresh key cannot put a block of its own in the tree.
    setup()
    expectCode(() => chain.import(child({ stakes: [createStake(net, b, 30, 1)] }, b), timeOf(net, 11)), 'NO_WEIGHT')
    // Its announcement goes in through a's block; it counts from the first block at or after the
    // activation delay (within the churn limit), and b has weight from there on.
    const withB = chain.import(child({ stakes: [createStake(net, b, 30, 1)] }), timeOf(net, 11)).node
    const early = createBlock(net, b, { height: 3, slot: 12, parent: withB.hash, readings: [], stakes: [] })
    expectCode(() => chain.import(early, timeOf(net, 12)), 'NO_WEIGHT')
    const due = 11 + net.params.activationDelaySlots
    const activating = createBlock(net, a, { height: 3, slot: due, parent: withB.hash, readings: [], stakes: [] })
    const act = chain.import(activating, timeOf(net, due)).node
    expect(act.state.stakes.get(toHex(b.publicKey))).toMatchObject({ stake: 30, counted: 30 })
    expect(withB.state.stakes.get(toHex(b.publicKey))).toMatchObject({ stake: 30, counted: 0, eligibleSlot: due })
    const next = createBlock(net, b, { height: 4, slot: due + 1, parent: act.hash, readings: [], stakes: [] })
    expect(chain.import(next, timeOf(net, due + 1)).node.weight).toBe(30)
  })

  it('reading already in the chain', () => {
    const { reading } = setup()
    expectCode(() => chain.import(child({ readings: [reading] }), timeOf(net, 11)), 'READING_ALREADY_IN_CHAIN')
  })

  it('the same reading twice inside one block', () => {
    setup()
    const r = createReading(net, b, 80, timeOf(net, 10))
    expectCode(() => chain.import(child({ readings: [r, r] }), timeOf(net, 11)), 'DUPLICATE_IN_BLOCK')
  })

  it('reading with a BPM out of range or a bad signature', () => {
    setup()
    expectCode(
      () => chain.import(child({ readings: [createReading(net, b, 999, timeOf(net, 10))] }), timeOf(net, 11)),
      'BPM_OUT_OF_RANGE',
    )
    const r = createReading(net, b, 80, timeOf(net, 10))
    const forged = { ...r, author: a.publicKey }
    expectCode(() => chain.import(child({ readings: [forged as Reading] }), timeOf(net, 11)), 'INVALID_SIGNATURE')
  })

  it('reading time after the block slot', () => {
    setup()
    expectCode(
      () => chain.import(child({ readings: [createReading(net, b, 80, timeOf(net, 30))] }), timeOf(net, 11)),
      'TIME_OUT_OF_RANGE',
    )
  })

  it('reading older than maxReadingAgeMs before the block’s slot (the lower bound), and one just inside it', () => {
    setup()
    const age = net.params.maxReadingAgeMs
    const slotStartMs = timeOf(net, 11) - net.params.slotMs / 2
    expectCode(
      () => chain.import(child({ readings: [createReading(net, b, 80, slotStartMs - age - 1)] }), timeOf(net, 11)),
      'TIME_OUT_OF_RANGE',
    )
    const oldest = createReading(net, b, 80, slotStartMs - age)
    expect(chain.import(child({ readings: [oldest] }), timeOf(net, 11)).node.readingIds.has(oldest.idHex)).toBe(true)
  })

  it('oversized block and too many records', () => {
    setup()
    const many = Array.from({ length: 9 }, (_, i) => createReading(net, b, 60 + i, timeOf(net, 10)))
    expectCode(() => chain.import(child({ readings: many }), timeOf(net, 11)), 'TOO_MANY_RECORDS')
    const big = makeChainConfig({
      name: 'testnet',
      slotMs: 1000,
      stakeTtlSlots: 50,
      maxReadingsPerBlock: 8,
      maxStakesPerBlock: 4,
      maxBlockBytes: 512,
    })
    const bigChain = new Chain(big)
    const blk = createBlock(big, a, {
      height: 1,
      slot: 10,
      parent: big.id,
      readings: many.slice(0, 5),
      stakes: [createStake(big, a, 1, 1)],
    })
    expectCode(() => bigChain.import(blk, timeOf(big, 10)), 'OVERSIZED')
  })

  it('wrong network: a block signed for another network id', () => {
    setup()
    const other = makeChainConfig({ name: 'othernet' })
    const foreign = createBlock(other, a, { height: 2, slot: 11, parent: b1.hash, readings: [], stakes: [] })
    expectCode(() => chain.import(foreign, timeOf(net, 11)), 'INVALID_SIGNATURE')
  })

  it('stake announcement with a stale seq, or twice for one validator in a block', () => {
    setup()
    expectCode(() => chain.import(child({ stakes: [createStake(net, a, 50, 1)] }), timeOf(net, 11)), 'STALE_SEQ')
    expectCode(
      () => chain.import(child({ stakes: [createStake(net, a, 50, 2), createStake(net, a, 60, 3)] }), timeOf(net, 11)),
      'DUPLICATE_IN_BLOCK',
    )
    const ok = chain.import(child({ stakes: [createStake(net, a, 50, 2)] }), timeOf(net, 11))
    expect(ok.node.state.stakes.get(toHex(a.publicKey))?.stake).toBe(50)
  })

  it('a stake above the network cap is refused: at gossip, in a block, and nowhere else can it count', () => {
    setup()
    const cap = net.params.maxStake
    expect(cap).toBe(2 ** 32)
    const huge = createStake(net, b, Number.MAX_SAFE_INTEGER, 1)
    expect(() => validateStake(net, huge)).toThrow(RecordError)
    expect(() => validateStake(net, huge)).toThrow(/STAKE_ABOVE_CAP/)
    expectCode(() => chain.import(child({ stakes: [huge] }), timeOf(net, 11)), 'STAKE_ABOVE_CAP')
    expectCode(
      () => chain.import(child({ stakes: [createStake(net, b, cap + 1, 1)] }), timeOf(net, 11)),
      'STAKE_ABOVE_CAP',
    )
    // At the cap it is valid, and stake totals stay exact: cap + 100 and cap + 101 differ.
    const ok = chain.import(child({ stakes: [createStake(net, b, cap, 1)] }), timeOf(net, 11))
    const total = [...ok.node.state.stakes.values()].reduce((n, e) => n + e.stake, 0)
    expect(total).toBe(cap + 100)
    expect(total + 1).not.toBe(total)
  })

  it('a known block and a block below the finalized height are ignored', () => {
    setup()
    expectCode(() => chain.import(b1, timeOf(net, 11)), 'ALREADY_KNOWN', 'IGNORE')
    // a (all the stake, from b1's state on) builds three more blocks: b2's vote justifies b1 at
    // epoch 11, b3's b2 at 12 (finalizing b1), b4's b3 at 13 (finalizing b2).
    const b2 = chain.import(
      voteOn(chain, a, b1.hashHex, 11, { readings: [createReading(net, a, 71, timeOf(net, 10))] }),
      timeOf(net, 11),
    ).node
    const b3 = chain.import(voteOn(chain, a, b2.hashHex, 12), timeOf(net, 12)).node
    expect([chain.root.height, chain.root.hashHex]).toEqual([1, b1.hashHex])
    chain.import(voteOn(chain, a, b3.hashHex, 13), timeOf(net, 13))
    expect([chain.root.height, chain.root.hashHex]).toEqual([2, b2.hashHex])
    expect(chain.finalizedCheckpoint().epoch).toBe(12)
    // A new block on b1 (height 2, where a final block already is): ignored, never imported.
    const sibling = createBlock(net, b, {
      height: 2,
      slot: 14,
      parent: b1.hash,
      readings: [],
      stakes: [createStake(net, b, 10, 1)],
    })
    expectCode(() => chain.import(sibling, timeOf(net, 14)), 'BELOW_FINALIZED', 'IGNORE')
    expect(chain.has(sibling.hashHex)).toBe(false)
  })
})

describe('chain state', () => {
  it('credits the reward and counts wins; a leave (stake 0) retires the validator but keeps its seq', () => {
    setup()
    const leave = chain.import(child({ stakes: [createStake(net, a, 0, 2)], slot: 11 }), timeOf(net, 11))
    const key = toHex(a.publicKey)
    expect(leave.node.state.accounts.get(key)).toMatchObject({ free: 2, won: 2 })
    // The leave is in the table at once; the stake still counts until the exit delay is over.
    expect(leave.node.state.stakes.get(key)).toMatchObject({ stake: 0, seq: 2, renewedSlot: 11, before: 100 })
    const exit = 11 + net.params.exitDelaySlots
    expect(activeStake(net.params, leave.node.state, key, exit - 1)).toBe(100)
    expect(activeStake(net.params, leave.node.state, key, exit)).toBe(0)
  })
})
