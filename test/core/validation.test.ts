import { beforeAll, describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { type BlockNode, Chain } from '../../src/core/chain.js'
import type { Signer } from '../../src/core/crypto.js'
import { encodeCanonical } from '../../src/core/encoding.js'
import { BlockError, RecordError } from '../../src/core/errors.js'
import { makeChainConfig } from '../../src/core/params.js'
import { revealerOf } from '../../src/core/randao.js'
import { type Block, createReading, createStake, decodeBlock, type Reading } from '../../src/core/records.js'
import { activeStake, genesisState } from '../../src/core/state.js'
import { SOURCE_DEPTH, sourceSlotOf, validateStake } from '../../src/core/validation.js'
import { createBlock } from '../helpers/blocks.js'
import { LockstepChain } from '../helpers/chain-builder.js'
import { foundChain, testNetwork, testSigner, timeOf, voteOn } from '../helpers/fixtures.js'

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
    // Its announcement goes in through a's block (slot 11). It counts from the first block at or
    // after the activation delay whose chain shows that block final, and b has weight from there on.
    const withB = chain.import(child({ stakes: [createStake(net, b, 30, 1)] }), timeOf(net, 11)).node
    const bKey = toHex(b.publicKey)
    const early = createBlock(net, b, { height: 3, slot: 12, parent: withB.hash, readings: [], stakes: [] })
    expectCode(() => chain.import(early, timeOf(net, 12)), 'NO_WEIGHT')
    const due = 11 + net.params.activationDelaySlots
    expect(withB.state.stakes.get(bKey)).toMatchObject({ stake: 30, counted: 0, eligibleSlot: due })
    // The delay is over, but a block on withB whose source shows nothing final yet leaves it waiting.
    const unproven = createBlock(net, a, { height: 3, slot: due, parent: withB.hash, readings: [], stakes: [] })
    expect(chain.import(unproven, timeOf(net, due)).node.state.stakes.get(bKey)?.counted).toBe(0)
    // Again, on a fresh chain (a second block of a's at slot `due` would be a double vote):
    setup()
    chain.import(withB.block as Block, timeOf(net, 11))
    // a votes (alone, all the counted stake) at slots 12, 13 and 14: withB is final (FFG's two
    // rounds) and block 14's source shows it, but the delay is not over yet.
    let tip = withB
    for (let s = 12; s <= 14; s++) tip = chain.import(voteOn(chain, a, tip.hashHex, s), timeOf(net, s)).node
    expect(chain.root.height).toBeGreaterThanOrEqual(withB.height)
    expect(tip.state.finalSlot).toBe(11)
    expect(tip.state.stakes.get(bKey)?.counted).toBe(0)
    const act = chain.import(voteOn(chain, a, tip.hashHex, due), timeOf(net, due)).node
    expect(act.state.stakes.get(bKey)).toMatchObject({ stake: 30, counted: 30 })
    const next = createBlock(net, b, {
      height: act.height + 1,
      slot: due + 1,
      parent: act.hash,
      readings: [],
      stakes: [],
    })
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

describe('final as the chain shows it (sourceSlot, finalSlot)', () => {
  it('a source is looked up at most SOURCE_DEPTH blocks back; further back, the parent’s slot for the same epoch, else 0', () => {
    const parent = { ...genesisState(net), sourceEpoch: 7, sourceSlot: 6 }
    const at = (height: number) => () => ({ height, slot: 8 })
    const block = (epoch: number) => ({ height: 100, source: { hash: new Uint8Array(32), epoch } })
    expect(sourceSlotOf(block(9), parent, at(100 - SOURCE_DEPTH))).toBe(8)
    expect(sourceSlotOf(block(9), parent, at(99 - SOURCE_DEPTH))).toBe(0)
    expect(sourceSlotOf(block(9), parent, () => undefined)).toBe(0)
    expect(sourceSlotOf(block(7), parent, at(99 - SOURCE_DEPTH))).toBe(6)
  })

  it('while finality is stalled no new stake counts, however long it waits', async () => {
    const stallNet = testNetwork({ activationDelaySlots: 2, minChurn: 10_000, stakeTtlSlots: 600 })
    const [founder, silent, joiner] = [a, b, await testSigner('c')]
    const view = new Chain(stallNet)
    // The silent 40 counts from block 4 on: the founder's 40 alone justifies nothing after that.
    const founded = foundChain(view, founder, [
      createStake(stallNet, founder, 40, 1),
      createStake(stallNet, silent, 40, 1),
    ])
    let tip = view.get((founded.at(-1) as Block).hashHex) as BlockNode
    tip = view.import(
      voteOn(view, founder, tip.hashHex, 6, { stakes: [createStake(stallNet, joiner, 1000, 1)] }),
      timeOf(stallNet, 6),
    ).node
    const stalledAt = tip.state.finalSlot
    for (let s = 7; s <= 40; s++) tip = view.import(voteOn(view, founder, tip.hashHex, s), timeOf(stallNet, s)).node
    expect(tip.state.finalSlot).toBe(stalledAt)
    expect(stalledAt).toBeLessThan(6)
    // The founder claims a source one epoch above its parent's (a checkpoint of an ancestor, so
    // a valid block) without the votes of that link: it shows nothing final and ends no stall
    // (before, such a block every 255 blocks kept the inactivity leak away for good).
    const sourceBlock = view.get(toHex(tip.state.sourceHash)) ?? expect.unreachable('source block in the tree')
    const fake = voteOn(view, founder, tip.hashHex, 41, {
      source: { hash: sourceBlock.hash, epoch: tip.state.sourceEpoch + 1 },
    })
    const faked = view.import(fake, timeOf(stallNet, 41)).node
    expect(faked.state.sourceEpoch).toBe(tip.state.sourceEpoch + 1)
    expect(faked.state.stall).toBe(tip.state.stall + 1)
    expect(faked.state.finalSlot).toBe(stalledAt)
    expect(tip.state.stakes.get(toHex(joiner.publicKey))).toMatchObject({ stake: 1000, counted: 0 })
    const joinerBlock = createBlock(stallNet, joiner, {
      height: tip.height + 1,
      slot: 41,
      parent: tip.hash,
      readings: [],
      stakes: [],
    })
    expectCode(() => view.import(joinerBlock, timeOf(stallNet, 41)), 'NO_WEIGHT')
  })

  it('the peer that built a chain and a late peer replaying it record the same source and final slots', async () => {
    const lockNet = testNetwork({ activationDelaySlots: 2 })
    const signers = [a, b, await testSigner('c')]
    const lock = new LockstepChain(lockNet, signers, [10, 30, 60])
    const blocks = new Map<string, Block>()
    const recorded = new Map<string, [number, number]>()
    for (let i = 0; i < 40; i++) {
      if (i % 4 === 0) lock.addReading(i % 3, 70)
      lock.step((r) => {
        blocks.set(r.node.hashHex, r.node.block as Block)
        recorded.set(r.node.hashHex, [r.node.state.sourceSlot, r.node.state.finalSlot])
      })
    }
    const canonical: Block[] = []
    for (let blk = blocks.get(lock.chain.head.hashHex); blk !== undefined; blk = blocks.get(toHex(blk.parent)))
      canonical.unshift(blk)
    const late = new Chain(lockNet)
    for (const blk of canonical) {
      const node = late.import(blk, timeOf(lockNet, blk.slot)).node
      expect([node.state.sourceSlot, node.state.finalSlot]).toEqual(recorded.get(blk.hashHex))
    }
    // A block whose source is below our root (a proposer that lags behind): found among the
    // final blocks every peer keeps, so its slot is recorded as on a peer whose root is lower.
    const below = canonical[late.root.height - 3]
    const proposer = signers[2]
    const entry = late.head.state.stakes.get(toHex(proposer.publicKey))
    const lagging = createBlock(lockNet, proposer, {
      height: late.head.height + 1,
      slot: late.head.slot + 1,
      parent: late.head.hash,
      readings: [],
      stakes: [],
      source: { hash: below.hash, epoch: below.slot + 1 },
      reveal: revealerOf(lockNet, proposer).revealFor(entry?.seq ?? 0, entry?.point ?? new Uint8Array(32)),
    })
    const node = late.import(lagging, timeOf(lockNet, lagging.slot)).node
    expect(node.state.sourceSlot).toBe(below.slot)
    // The chain finalized as it went, and every validator announced in it counts.
    const head = late.head.state
    expect(head.finalSlot).toBeGreaterThan(30)
    for (const [i, stake] of [10, 30, 60].entries())
      expect(head.stakes.get(toHex(signers[i].publicKey))?.counted).toBe(stake)
  })
})
