import fc from 'fast-check'
import { beforeAll, describe, expect, it } from 'vitest'
import { equalBytes, toHex } from '../../src/core/bytes.js'
import { type BlockNode, Chain } from '../../src/core/chain.js'
import type { Signer } from '../../src/core/crypto.js'
import { BlockError, RecordError } from '../../src/core/errors.js'
import { Mempool } from '../../src/core/mempool.js'
import { buildSignedCandidate } from '../../src/core/proposer.js'
import {
  createReading,
  createStake,
  createTransfer,
  decodeBlock,
  decodeTransfer,
  encodeTransfer,
  type Reading,
} from '../../src/core/records.js'
import { accountAt, activeStake, holdings, supplyOf } from '../../src/core/state.js'
import { validateTransfer } from '../../src/core/validation.js'
import { createBlock, foundingBlock } from '../helpers/blocks.js'
import { prng, testGenesisNetwork, testNetwork, testSigners, timeOf, voteOn } from '../helpers/fixtures.js'

let alice: Signer
let bob: Signer
let carol: Signer
let mallory: Signer

beforeAll(async () => {
  ;[alice, bob, carol, mallory] = await testSigners(4, 'ledger')
})

const hex = (s: Signer) => toHex(s.publicKey)

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn()
  } catch (err) {
    expect(err instanceof BlockError || err instanceof RecordError).toBe(true)
    expect((err as BlockError).code).toBe(code)
    return
  }
  expect.unreachable(`expected ${code}`)
}

/** A genesis network alice 1000, bob 500, carol 10 (mallory nothing); alice stakes 600 in block 1. */
function setup() {
  // No activation delay: bob proposes in the slot after his stake's block (the delay is tested
  // in validation.test.ts).
  const net = testGenesisNetwork(
    [
      [alice, 1000],
      [bob, 500],
      [carol, 10],
    ],
    { activationDelaySlots: 0, minChurn: 10_000 },
  )
  const chain = new Chain(net)
  const b1 = foundingBlock(net, alice, [createStake(net, alice, 600, 1)])
  chain.import(b1, timeOf(net, 1))
  return { net, chain, b1 }
}

describe('genesis networks: accounts, bonding, transfers', () => {
  it('the allocations are the genesis balances and part of the network id', () => {
    const net = testGenesisNetwork([[alice, 1000]])
    const other = testGenesisNetwork([[alice, 1001]])
    expect(net.ledger).toBe(true)
    expect(testNetwork().ledger).toBe(false)
    expect(net.idHex).not.toBe(other.idHex)
    const chain = new Chain(net)
    expect(accountAt(chain.root.state, hex(alice), 0)).toMatchObject({ free: 1000, bonded: 0, nonce: 0 })
  })

  it('a stake bonds tokens from the free balance; more than free + bonded is refused', () => {
    const { net, chain, b1 } = setup()
    const a = accountAt(chain.head.state, hex(alice), 1)
    // 1000 - 600 bonded + 1 reward.
    expect(a).toMatchObject({ free: 401, bonded: 600 })
    // Bob asks for more than he has: the block holding it is invalid.
    const tooMuch = voteOn(chain, alice, b1.hashHex, 2, { stakes: [createStake(net, bob, 501, 1)] })
    expectCode(() => chain.import(tooMuch, timeOf(net, 2)), 'INSUFFICIENT_BALANCE')
    const exact = voteOn(chain, alice, b1.hashHex, 2, { stakes: [createStake(net, bob, 500, 1)] })
    const n = chain.import(exact, timeOf(net, 2)).node
    expect(accountAt(n.state, hex(bob), 2)).toMatchObject({ free: 0, bonded: 500 })
    // Alice raises her stake to all she has (free + bonded), not a token more.
    expectCode(
      () =>
        chain.import(
          voteOn(chain, alice, n.hashHex, 3, { stakes: [createStake(net, alice, 1003, 2)] }),
          timeOf(net, 3),
        ),
      'INSUFFICIENT_BALANCE',
    )
    const all = chain.import(
      voteOn(chain, alice, n.hashHex, 3, { stakes: [createStake(net, alice, 1002, 2)] }),
      timeOf(net, 3),
    )
    expect(accountAt(all.node.state, hex(alice), 3)).toMatchObject({ free: 1, bonded: 1002 })
  })

  it('a stranger without tokens cannot join, not even on a chain with no stake (the takeover attack)', () => {
    const net = testGenesisNetwork([[alice, 1000]])
    const chain = new Chain(net)
    const huge = foundingBlock(net, mallory, [createStake(net, mallory, 2 ** 32, 1)])
    expectCode(() => chain.import(huge, timeOf(net, 1)), 'INSUFFICIENT_BALANCE')
    const one = foundingBlock(net, mallory, [createStake(net, mallory, 1, 1)])
    expectCode(() => chain.import(one, timeOf(net, 1)), 'INSUFFICIENT_BALANCE')
    expect(chain.head.height).toBe(0)
  })

  it('a lower stake unbonds: the difference is free again unbondingSlots after its block, not before', () => {
    const { net, chain, b1 } = setup()
    const cut = chain.import(
      voteOn(chain, alice, b1.hashHex, 2, { stakes: [createStake(net, alice, 100, 2)] }),
      timeOf(net, 2),
    )
    const release = 2 + net.params.unbondingSlots
    const a = accountAt(cut.node.state, hex(alice), release - 1)
    expect(a).toMatchObject({ free: 402, bonded: 100, unbonding: [{ amount: 500, release }] })
    expect(holdings(a)).toBe(1002)
    // Not spendable before the release slot: a transfer of 403 at slot release-1 overdraws; at the
    // release slot all 902 are (the reward of that block comes after its transfers).
    const early = voteOn(chain, alice, cut.node.hashHex, release - 1, {
      transfers: [createTransfer(net, alice, bob.publicKey, 403, 1)],
    })
    expectCode(() => chain.import(early, timeOf(net, release - 1)), 'INSUFFICIENT_BALANCE')
    const later = voteOn(chain, alice, cut.node.hashHex, release, {
      transfers: [createTransfer(net, alice, bob.publicKey, 902, 1)],
    })
    const n = chain.import(later, timeOf(net, release)).node
    expect(accountAt(n.state, hex(alice), release)).toMatchObject({ free: 1, bonded: 100, unbonding: [] })
    expect(accountAt(n.state, hex(bob), release).free).toBe(1402)
    // The stake itself still counts the old amount for the exit delay, then the new one.
    expect(activeStake(net.params, cut.node.state, hex(alice), 3)).toBe(600)
    expect(activeStake(net.params, cut.node.state, hex(alice), 2 + net.params.exitDelaySlots)).toBe(100)
  })

  it('transfers: next nonce only, within the free balance, never to oneself, signed by the sender', () => {
    const { net, chain, b1 } = setup()
    const t1 = createTransfer(net, bob, carol.publicKey, 200, 1)
    const at2 = (transfers: ReturnType<typeof createTransfer>[]) => voteOn(chain, alice, b1.hashHex, 2, { transfers })
    expectCode(
      () => chain.import(at2([createTransfer(net, bob, carol.publicKey, 200, 2)]), timeOf(net, 2)),
      'NONCE_GAP',
    )
    expectCode(
      () => chain.import(at2([createTransfer(net, bob, carol.publicKey, 501, 1)]), timeOf(net, 2)),
      'INSUFFICIENT_BALANCE',
    )
    expectCode(() => validateTransfer(net, createTransfer(net, bob, bob.publicKey, 1, 1)), 'BAD_TRANSFER')
    expectCode(() => validateTransfer(net, createTransfer(net, bob, carol.publicKey, 0, 1)), 'BAD_TRANSFER')
    const forged = decodeTransfer(
      encodeTransfer({ ...t1, signature: createTransfer(net, carol, bob.publicKey, 200, 1).signature }),
    )
    expectCode(() => validateTransfer(net, forged), 'INVALID_SIGNATURE')
    // The same nonce twice (a double spend to two receivers): one block cannot hold both.
    const t1b = createTransfer(net, bob, mallory.publicKey, 200, 1)
    expectCode(() => chain.import(at2([t1, t1b]), timeOf(net, 2)), 'STALE_NONCE')
    // Two transfers that overdraw together: the second is refused.
    const t2 = createTransfer(net, bob, mallory.publicKey, 301, 2)
    expectCode(() => chain.import(at2([t1, t2]), timeOf(net, 2)), 'INSUFFICIENT_BALANCE')
    const n = chain.import(at2([t1, createTransfer(net, bob, mallory.publicKey, 300, 2)]), timeOf(net, 2)).node
    expect(accountAt(n.state, hex(bob), 2)).toMatchObject({ free: 0, nonce: 2 })
    expect(accountAt(n.state, hex(carol), 2).free).toBe(210)
    expect(accountAt(n.state, hex(mallory), 2).free).toBe(300)
    // A replay of a landed transfer is stale.
    expectCode(
      () => chain.import(voteOn(chain, alice, n.hashHex, 3, { transfers: [t1] }), timeOf(net, 3)),
      'STALE_NONCE',
    )
    // Transfers travel in blocks and decode to the same block.
    const again = decodeBlock(net, n.block?.bytes ?? new Uint8Array())
    expect(again.transfers.map((t) => t.idHex)).toEqual(n.block?.transfers.map((t) => t.idHex))
  })

  it('slashing burns the bonded and unbonding tokens; the free balance stays', () => {
    const { net, chain, b1 } = setup()
    let tip = chain.import(
      voteOn(chain, alice, b1.hashHex, 2, { stakes: [createStake(net, bob, 400, 1)] }),
      timeOf(net, 2),
    ).node
    // Bob's stake counts once block 2 is final as the chain shows it: alice's blocks 3 to 5.
    for (let slot = 3; slot <= 5; slot++)
      tip = chain.import(voteOn(chain, alice, tip.hashHex, slot), timeOf(net, slot)).node
    const n6 = chain.import(
      voteOn(chain, bob, tip.hashHex, 6, { stakes: [createStake(net, bob, 300, 2)] }),
      timeOf(net, 6),
    ).node
    const x = voteOn(chain, bob, n6.hashHex, 7)
    const y = voteOn(chain, bob, n6.hashHex, 7, { readings: [], stakes: [createStake(net, bob, 300, 3)] })
    chain.import(x, timeOf(net, 7))
    const found = chain.import(y, timeOf(net, 7)).evidence
    expect(found).toHaveLength(1)
    const s = chain.import(voteOn(chain, alice, x.hashHex, 8, { evidence: found }), timeOf(net, 8)).node
    // Bob had 100 free + 1 reward (n6), 300 bonded and 100 unbonding, plus the reward of x.
    expect(accountAt(s.state, hex(bob), 8)).toMatchObject({ free: 102, bonded: 0, unbonding: [] })
    expect(s.state.burned).toBe(400)
    // Eight blocks (1 to 6, x, s) paid a reward of 1.
    expect(supplyOf(s.state)).toBe(1510 + 8 - 400)
  })
})

describe('the mempool builds only blocks that can pay', () => {
  it('takes transfers in nonce order within the balance, the first of a double spend, and stakes that are backed', () => {
    const { net, chain } = setup()
    const pool = new Mempool()
    expect(pool.addTransfer(createTransfer(net, bob, carol.publicKey, 300, 2))).toBe('added')
    expect(pool.addTransfer(createTransfer(net, bob, carol.publicKey, 150, 1))).toBe('added')
    // The same nonce again to someone else: the first one seen stays.
    expect(pool.addTransfer(createTransfer(net, bob, mallory.publicKey, 150, 1))).toBe('known')
    // Nonce 3 would overdraw after 1 and 2 (500 - 450 = 50 < 60): it waits.
    expect(pool.addTransfer(createTransfer(net, bob, carol.publicKey, 60, 3))).toBe('added')
    pool.addStake(createStake(net, carol, 10 + 450, 1))
    pool.addStake(createStake(net, mallory, 5, 1))
    const b = buildSignedCandidate(chain, pool, alice, 2)
    expect(b?.transfers.map((t) => t.nonce)).toEqual([1, 2])
    // Carol can stake what she receives in the same block; mallory has nothing.
    expect(b?.stakes.map((s) => toHex(s.validator))).toEqual([hex(carol)])
    const n = chain.import(b ?? expect.unreachable(), timeOf(net, 2)).node
    expect(accountAt(n.state, hex(carol), 2)).toMatchObject({ free: 0, bonded: 460 })
  })
})

describe('conservation (property)', () => {
  it('free + bonded + unbonding = genesis total + rewards - burned (slashing, reading fees) on every block; no double spend lands twice; blocks built by the pool always pay', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 2 ** 31 }), (seed) => {
        const rand = prng(seed)
        const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]
        const people = [alice, bob, carol, mallory]
        const net = testGenesisNetwork(
          people.map((s, i) => [s, 100 * (i + 1)] as const),
          { unbondingSlots: 3, readingFee: 2 },
        )
        const chain = new Chain(net)
        const genesisTotal = 1000
        let readingsLanded = 0
        const spent = new Set<string>()
        let head: BlockNode = chain.root
        let landed = 0
        for (let slot = 1; slot <= 40; slot++) {
          // This slot's records: transfers (some overdrawing, some spending one nonce twice) and
          // stake changes (raises beyond the balance, cuts, leaves).
          const pool = new Mempool()
          const account = (s: Signer) => accountAt(head.state, hex(s), slot)
          const doubles = []
          for (const from of people) {
            if (rand() < 0.4) continue
            const free = account(from).free
            for (let k = 1; k <= 2; k++) {
              const to = pick(people.filter((p) => p !== from))
              const nonce = account(from).nonce + k
              pool.addTransfer(createTransfer(net, from, to.publicKey, 1 + Math.floor(rand() * free * 0.7), nonce))
              if (rand() < 0.3)
                doubles.push(createTransfer(net, from, from === alice ? bob.publicKey : alice.publicKey, 1, nonce))
            }
          }
          for (const d of doubles) expect(pool.addTransfer(d)).toBe('known')
          // Readings, each burning the fee: some from accounts that cannot pay for all of theirs.
          for (const [i, s] of people.entries())
            for (let k = 0; k < Math.floor(rand() * 4); k++)
              pool.addReading(createReading(net, s, 40 + i * 10 + k, timeOf(net, slot) - 100 - k))
          const who = pick(people)
          const seq = (head.state.stakes.get(hex(who))?.seq ?? 0) + 1
          const limit = account(who).free + account(who).bonded
          pool.addStake(createStake(net, who, Math.floor(rand() * limit * 1.3), seq))
          let proposer = people.find((s) => activeStake(net.params, head.state, hex(s), slot) > 0)
          if (proposer === undefined) {
            // Every stake lapsed or left: alice joins again (the join rule of a chain with no stake).
            pool.addStake(createStake(net, alice, 50, (head.state.stakes.get(hex(alice))?.seq ?? 0) + 1))
            proposer = alice
          }
          const b = buildSignedCandidate(chain, pool, proposer, slot)
          if (b === undefined) continue
          // The double spends, forced into a block next to the transfers they compete with: refused.
          for (const d of doubles.filter((d) => b.transfers.some((t) => t.from === d.from && t.nonce === d.nonce))) {
            const forced = voteOn(chain, proposer, head.hashHex, slot, { transfers: [...b.transfers, d] })
            expect(() => chain.import(forced, timeOf(net, slot))).toThrow(BlockError)
          }
          head = chain.import(b, timeOf(net, slot)).node
          readingsLanded += b.readings.length
          const st = head.state
          if (supplyOf(st) !== genesisTotal + head.height * net.params.reward - st.burned) return false
          for (const a of st.accounts.values())
            if (a.free < 0 || a.bonded < 0 || holdings(a) > genesisTotal + 40) return false
          for (const t of b.transfers) {
            const key = `${toHex(t.from)}:${t.nonce}`
            if (spent.has(key)) return false
            spent.add(key)
            landed++
          }
        }
        return head.height > 20 && landed > 0 && readingsLanded > 0
      }),
      { numRuns: 15 },
    )
  })
})

describe('the stake table is pruned, and old announcements cannot come back', () => {
  it('a leave and a lapsed stake are pruned at the next multiple of 64 slots; replaying them is STALE_SEQ; a seq above the block slot is SEQ_AHEAD', () => {
    const net = testNetwork({ stakeTtlSlots: 40, activationDelaySlots: 0, minChurn: 10_000 })
    const chain = new Chain(net)
    const b1 = foundingBlock(net, alice, [createStake(net, alice, 50, 1)])
    chain.import(b1, timeOf(net, 1))
    const bobJoins = createStake(net, bob, 20, 2)
    const carolJoins = createStake(net, carol, 30, 2)
    const b2 = chain.import(
      voteOn(chain, alice, b1.hashHex, 2, { stakes: [bobJoins, carolJoins] }),
      timeOf(net, 2),
    ).node
    // Bob leaves at slot 5; carol never renews (her stake lapses after 40 slots); alice renews.
    const bobLeaves = createStake(net, bob, 0, 5)
    const b3 = chain.import(voteOn(chain, alice, b2.hashHex, 5, { stakes: [bobLeaves] }), timeOf(net, 5)).node
    const b4 = chain.import(
      voteOn(chain, alice, b3.hashHex, 40, { stakes: [createStake(net, alice, 50, 40)] }),
      timeOf(net, 40),
    ).node
    expect([...b4.state.stakes.keys()].sort()).toEqual([alice, bob, carol].map(hex).sort())
    // Slot 63: no multiple of 64 passed yet. Slot 70: the first block past 64 prunes.
    const b5 = chain.import(voteOn(chain, alice, b4.hashHex, 63), timeOf(net, 63)).node
    expect(b5.state.stakes.size).toBe(3)
    const b6 = chain.import(voteOn(chain, alice, b5.hashHex, 70), timeOf(net, 70)).node
    expect([...b6.state.stakes.keys()]).toEqual([hex(alice)])
    expect(b6.state.seqFloor).toBe(5)
    // Bob's and carol's old announcements replayed by anyone: refused.
    for (const old of [bobJoins, carolJoins, bobLeaves]) {
      expectCode(
        () => chain.import(voteOn(chain, alice, b6.hashHex, 71, { stakes: [old] }), timeOf(net, 71)),
        'STALE_SEQ',
      )
    }
    // A seq no block up to this slot could take: SEQ_AHEAD (it would let an attacker raise the floor at will).
    expectCode(
      () =>
        chain.import(
          voteOn(chain, alice, b6.hashHex, 71, { stakes: [createStake(net, bob, 20, 72)] }),
          timeOf(net, 71),
        ),
      'SEQ_AHEAD',
    )
    // Bob back with a fresh seq (above the floor, at most the slot): a newcomer again.
    const back = chain.import(
      voteOn(chain, alice, b6.hashHex, 71, { stakes: [createStake(net, bob, 20, 71)] }),
      timeOf(net, 71),
    ).node
    expect(back.state.stakes.get(hex(bob))?.stake).toBe(20)
  })

  it('the stake table holds at most maxValidators entries: a new key beyond is TABLE_FULL (the pool builds around it), a renewal is not, and pruning makes room', () => {
    const net = testNetwork({ maxValidators: 2, stakeTtlSlots: 40, activationDelaySlots: 0, minChurn: 10_000 })
    const chain = new Chain(net)
    const b1 = foundingBlock(net, alice, [createStake(net, alice, 50, 1)])
    chain.import(b1, timeOf(net, 1))
    // Bob takes the last place; carol in the same block would be the third entry.
    expectCode(
      () =>
        chain.import(
          voteOn(chain, alice, b1.hashHex, 2, {
            stakes: [createStake(net, bob, 20, 2), createStake(net, carol, 30, 2)],
          }),
          timeOf(net, 2),
        ),
      'TABLE_FULL',
    )
    const b2 = chain.import(
      voteOn(chain, alice, b1.hashHex, 2, { stakes: [createStake(net, bob, 20, 2)] }),
      timeOf(net, 2),
    ).node
    // The pool offers carol's to no block while the table is full, but renewals and raises go in.
    const pool = new Mempool()
    const carolJoins = createStake(net, carol, 30, 3)
    const bobRaises = createStake(net, bob, 25, 3)
    pool.addStake(carolJoins)
    pool.addStake(bobRaises)
    expect(pool.pending(chain, b2, undefined, 3).stakes.map((x) => x.idHex)).toEqual([bobRaises.idHex])
    expectCode(
      () => chain.import(voteOn(chain, alice, b2.hashHex, 3, { stakes: [carolJoins] }), timeOf(net, 3)),
      'TABLE_FULL',
    )
    // Bob leaves; alice renews; once pruning (the first block past slot 64) removes bob, carol fits.
    const b3 = chain.import(
      voteOn(chain, alice, b2.hashHex, 4, { stakes: [createStake(net, bob, 0, 4)] }),
      timeOf(net, 4),
    ).node
    const b4 = chain.import(
      voteOn(chain, alice, b3.hashHex, 40, { stakes: [createStake(net, alice, 50, 40)] }),
      timeOf(net, 40),
    ).node
    const b5 = chain.import(voteOn(chain, alice, b4.hashHex, 65), timeOf(net, 65)).node
    expect([...b5.state.stakes.keys()]).toEqual([hex(alice)])
    const carolLater = createStake(net, carol, 30, 66)
    pool.addStake(carolLater)
    expect(pool.pending(chain, b5, undefined, 66).stakes.map((x) => x.idHex)).toEqual([carolLater.idHex])
    const b6 = chain.import(voteOn(chain, alice, b5.hashHex, 66, { stakes: [carolLater] }), timeOf(net, 66)).node
    expect(b6.state.stakes.get(hex(carol))?.stake).toBe(30)
  })

  it('the mempool holds a stake whose seq is ahead of the block being built until a block can take it', async () => {
    const net = testNetwork({ stakeTtlSlots: 40, activationDelaySlots: 0, minChurn: 10_000 })
    const chain = new Chain(net)
    const pool = new Mempool()
    const s = createStake(net, alice, 50, 90)
    pool.addStake(s)
    // Held back while its seq is ahead of the block being built; taken once it is not.
    expect(pool.pending(chain, chain.head, undefined, 89).stakes).toEqual([])
    expect(pool.pending(chain, chain.head, undefined, 90).stakes.map((x) => x.idHex)).toEqual([s.idHex])
  })
})

describe('the reading fee (genesis networks)', () => {
  it('each reading in a block burns readingFee from its author, who must be able to pay; the pool takes only what authors can pay', () => {
    const net = testGenesisNetwork(
      [
        [alice, 1000],
        [bob, 500],
        [carol, 10],
      ],
      { activationDelaySlots: 0, minChurn: 10_000, readingFee: 3 },
    )
    const chain = new Chain(net)
    const b1 = foundingBlock(net, alice, [createStake(net, alice, 600, 1)])
    chain.import(b1, timeOf(net, 1))
    const read = (s: Signer, bpm: number) => createReading(net, s, bpm, timeOf(net, 2) - 100)
    const carols = [60, 61, 62, 63].map((bpm) => read(carol, bpm))
    const mallorys = read(mallory, 70)
    // The pool: carol (10 tokens) can pay for three of her four readings; mallory (none) for none.
    const pool = new Mempool()
    for (const r of [...carols, mallorys, read(alice, 80)]) expect(pool.addReading(r)).toBe('added')
    const taken = pool.pending(chain, chain.head, undefined, 2).readings
    expect(taken.filter((r) => equalBytes(r.author, carol.publicKey))).toHaveLength(3)
    expect(taken.some((r) => equalBytes(r.author, mallory.publicKey))).toBe(false)
    expect(taken.some((r) => equalBytes(r.author, alice.publicKey))).toBe(true)
    // A block with what the pool chose: the fees are burned, the supply says so.
    const b2 = chain.import(voteOn(chain, alice, b1.hashHex, 2, { readings: taken }), timeOf(net, 2)).node
    expect(accountAt(b2.state, hex(carol), 2).free).toBe(1)
    expect(b2.state.burned).toBe(4 * 3)
    expect(supplyOf(b2.state)).toBe(1510 + 2 * net.params.reward - 12)
    // Carol's fourth (1 token left) and mallory's (none): INSUFFICIENT_BALANCE.
    for (const r of [carols.find((c) => !taken.includes(c)), mallorys]) {
      expectCode(
        () => chain.import(voteOn(chain, alice, b2.hashHex, 3, { readings: [r as Reading] }), timeOf(net, 3)),
        'INSUFFICIENT_BALANCE',
      )
    }
    // The open devnet has no tokens: the fee does not apply there.
    const devnet = testNetwork({ readingFee: 3 })
    const free = new Chain(devnet)
    const d1 = createBlock(devnet, alice, {
      height: 1,
      slot: 1,
      parent: devnet.id,
      readings: [createReading(devnet, mallory, 70, timeOf(devnet, 1) - 100)],
      stakes: [createStake(devnet, alice, 10, 1)],
    })
    expect(free.import(d1, timeOf(devnet, 1)).node.state.burned).toBe(0)
  })
})
