import { beforeAll, describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { type BlockNode, Chain } from '../../src/core/chain.js'
import type { Signer } from '../../src/core/crypto.js'
import { BlockError } from '../../src/core/errors.js'
import { compareEntrants, lotteryWinner, ticketFor } from '../../src/core/lottery.js'
import { Mempool } from '../../src/core/mempool.js'
import { buildSignedCandidate, proposalRank } from '../../src/core/proposer.js'
import { type Block, createReading, createStake, type StakeAnnouncement } from '../../src/core/records.js'
import { createBlock } from '../helpers/blocks.js'
import { foundChain, testNetwork, testSigners, timeOf } from '../helpers/fixtures.js'

// No activation delay and no churn limit in the way: these scenarios place joins, votes and leaves slot by slot (the delay and
// the churn limit have their own tests in validation.test.ts and churn tests).
const net = testNetwork({ stakeTtlSlots: 20, activationDelaySlots: 0, minChurn: 1000 })
let signers: Signer[]
const seqs = new Map<string, number>()

beforeAll(async () => {
  signers = await testSigners(76, 'fc')
})

function stake(v: Signer, amount: number): StakeAnnouncement {
  const key = toHex(v.publicKey)
  const seq = (seqs.get(key) ?? 0) + 1
  seqs.set(key, seq)
  return createStake(net, v, amount, seq)
}

/** Every chain (peer view) of the running test; a block votes as the latest view holding its parent would. */
let views: Chain[] = []
/** Every block built in the running test, in order (to replay into a fresh view). */
let history: Block[] = []

function track(chain: Chain): Chain {
  views.push(chain)
  return chain
}

function blockOn(
  v: Signer,
  parent: { hash: Uint8Array; height: number },
  slot: number,
  stakes: StakeAnnouncement[] = [],
): Block {
  const parentHex = toHex(parent.hash)
  const view = [...views].reverse().find((c) => c.has(parentHex))
  const node = view?.get(parentHex)
  const source = view !== undefined && node !== undefined ? view.sourceFor(slot, node) : undefined
  const block = createBlock(net, v, {
    height: parent.height + 1,
    slot,
    parent: parent.hash,
    readings: [],
    stakes,
    source,
    votes: source === undefined || view === undefined ? [] : view.votesFor(source),
  })
  history.push(block)
  return block
}

function importAll(chain: Chain, blocks: Block[], slot: number): void {
  for (const b of blocks) chain.import(b, timeOf(net, slot))
}

/**
 * A chain founded by `vs[0]` whose first block takes everyone's announcement (`foundChain`: the
 * founder builds alone until everyone counts), its blocks in this test's history. Returns block 5:
 * from slot 6 on, every validator's vote counts.
 */
function found(chain: Chain, vs: Signer[], stakes: number[]): Block {
  const blocks = foundChain(
    chain,
    vs[0],
    vs.map((v, i) => stake(v, stakes[i])),
  )
  history.push(...blocks)
  const counted = chain.head.state.stakes
  expect(vs.every((v, i) => counted.get(toHex(v.publicKey))?.counted === stakes[i])).toBe(true)
  return blocks.at(-1) as Block
}

/** A fresh test: no seqs, views or history yet. */
function fresh(): Chain {
  seqs.clear()
  views = []
  history = []
  return track(new Chain(net))
}

/**
 * Validators 0..n-1 with the given stakes (`found`), then every validator votes for block 5 at
 * slot 6, which justifies (b5, 6) and finalizes b4. Returns the chain and block 5.
 */
function bootstrap(stakes: number[], reverse = false, offset = 0): { chain: Chain; b5: Block; votes: Block[] } {
  const chain = fresh()
  const vs = signers.slice(offset, offset + stakes.length)
  const b5 = found(chain, vs, stakes)
  const votes = vs.map((v) => blockOn(v, b5, 6))
  importAll(chain, reverse ? [...votes].reverse() : votes, 6)
  expect(chain.justified().node.hashHex).toBe(b5.hashHex)
  return { chain, b5, votes }
}

/** The lottery winner among candidates on `parent` (seeded by the parent's RANDAO mix in `chain`). */
function expectedWinner(chain: Chain, parent: Block, candidates: Block[], weights: number[]): Block {
  const mix = (chain.get(parent.hashHex) as BlockNode).state.mix
  const entrants = candidates.map((c, i) => ({
    ticket: ticketFor(mix, c.proposer),
    weight: weights[i],
    hash: c.hash,
    c,
  }))
  return (lotteryWinner(entrants) as { c: Block }).c
}

describe('fork choice', () => {
  it('fresh siblings: the lottery winner is the head, whatever the arrival order', () => {
    const { chain, b5, votes } = bootstrap([10, 30, 60])
    const winner = expectedWinner(chain, b5, votes, [10, 30, 60])
    expect(chain.head.hashHex).toBe(winner.hashHex)
    const reversed = bootstrap([10, 30, 60], true)
    expect(reversed.chain.head.hashHex).toBe(winner.hashHex)
  })

  it('a validator whose head is already a candidate of this slot proposes on its parent, not never', () => {
    const { chain, b5, votes } = bootstrap([10, 30, 60])
    // The slot-6 candidates arrived before this validator's own slot-6 timer fired.
    expect(chain.head.slot).toBe(6)
    const late = signers[0]
    const mempool = new Mempool()
    mempool.addReading(createReading(net, late, 80, timeOf(net, 6)))
    const c = buildSignedCandidate(chain, mempool, late, 6) as Block
    expect(c).toBeDefined()
    expect(toHex(c.parent)).toBe(b5.hashHex)
    expect(c.readings).toHaveLength(1)
    expect(votes.map((v) => v.hashHex)).toContain(chain.head.hashHex)
  })

  it('proposal ranks (for the publication stagger) are a permutation with the lottery winner first', () => {
    const { chain } = bootstrap([10, 30, 60])
    const slot = 7
    const base = chain.head
    const vs = signers.slice(0, 3)
    const ranks = vs.map((v) => proposalRank(chain, v.publicKey, slot, 10))
    expect([...ranks].sort()).toEqual([0, 1, 2])
    // Counted only up to the cap.
    expect(vs.map((v) => proposalRank(chain, v.publicKey, slot, 1)).sort()).toEqual([0, 1, 1])
    const winner = lotteryWinner(
      vs.map((v, i) => ({
        ticket: ticketFor(base.state.mix, v.publicKey),
        weight: [10, 30, 60][i],
        hash: v.publicKey,
        i,
      })),
    ) as { i: number }
    expect(ranks[winner.i]).toBe(0)
  })

  it('once votes land, a later candidate with a better ticket does not take over', () => {
    const stakes = [25, 25, 25, 25]
    const chain = fresh()
    const vs = signers.slice(0, 4)
    const b5 = found(chain, vs, stakes)
    const candidates = vs.map((v) => blockOn(v, b5, 6))
    const best = expectedWinner(chain, b5, candidates, stakes)
    const others = candidates.filter((c) => c !== best)
    importAll(chain, others, 6)
    const early = chain.head
    const root = chain.root.height
    // Two validators (50%: votes, but not enough to finalize) build on the early winner at slot 7.
    const votes = vs
      .filter((v) => toHex(v.publicKey) !== toHex(best.proposer))
      .slice(0, 2)
      .map((v) => blockOn(v, early.block as Block, 7))
    importAll(chain, votes, 7)
    expect(chain.root.height).toBe(root) // nothing new final: the fork choice alone decides
    chain.import(best, timeOf(net, 7))
    expect(chain.get(best.hashHex)).toBeDefined()
    // Without those votes the late candidate would have won the lottery.
    expect(compareEntrants(chain.get(best.hashHex) as BlockNode, early)).toBeLessThan(0)
    let n = chain.head
    while (n.height > early.height) n = chain.get(n.parentHex as string) as typeof n
    expect(n.hashHex).toBe(early.hashHex)
  })

  it('a private chain built by a 5% validator never becomes head', () => {
    // The 35% validator is offline, so the public side (60%) cannot finalize: fork choice alone decides.
    // Several key sets, so that in some the private chain also wins the lottery at the fork.
    let privateWonLottery = 0
    for (let offset = 0; offset < 72; offset++) {
      const { chain } = bootstrap([5, 30, 30, 35], false, offset)
      const [small, b, c] = signers.slice(offset)
      const base = chain.head.block as Block
      const root = chain.root.height
      const privateChain: Block[] = []
      let priv = base
      // (Stakes registered at slot 1 live 20 slots: the private chain stays within them.)
      for (let s = 7; s < 20; s++) {
        priv = blockOn(small, priv, s)
        privateChain.push(priv)
      }
      let pub = base
      for (let s = 7; s < 12; s++) {
        importAll(
          chain,
          [b, c].map((v) => blockOn(v, pub, s)),
          s,
        )
        pub = chain.head.block as Block
      }
      expect(chain.root.height).toBe(root) // nothing new final: the fork choice alone decides
      const firstPublic = chain.chainTo().find((n) => n.height === base.height + 1) as BlockNode
      importAll(chain, privateChain, 20)
      expect(chain.head.hashHex).toBe(pub.hashHex)
      expect(chain.head.height).toBeLessThan(priv.height)
      if (compareEntrants(chain.get(privateChain[0].hashHex) as BlockNode, firstPublic) < 0) privateWonLottery++
    }
    expect(privateWonLottery).toBeGreaterThan(0)
  })
})

/** Two sides build their own chains for `slots` slots from the common head. */
function partition(stakes: number[], sideA: number[], slots: number, slowA = false, offset = 0) {
  const { chain } = bootstrap(stakes, false, offset)
  const vs = signers.slice(offset, offset + stakes.length)
  const start = chain.head.block as Block
  // Two views that saw the same history up to the split.
  const viewA = track(new Chain(net))
  const viewB = track(new Chain(net))
  for (const view of [viewA, viewB]) importAll(view, [...history], 6)
  const blocks: Block[] = []
  const grow = (view: Chain, members: Signer[], slot: number) => {
    const parent = view.head.block as Block
    const round = members.map((v) => blockOn(v, parent, slot))
    importAll(view, round, slot)
    blocks.push(...round)
  }
  const a = vs.filter((_, i) => sideA.includes(i))
  const b = vs.filter((_, i) => !sideA.includes(i))
  for (let s = 7; s < 7 + slots; s++) {
    if (!slowA || s % 2 === 0) grow(viewA, a, s)
    grow(viewB, b, s)
  }
  return { chain, start, viewA, viewB, blocks, rootBefore: chain.root.height }
}

describe('partitions and finality', () => {
  it('60/40 split: nobody finalizes during the split; on healing the 60% branch wins even when shorter', () => {
    let minorityWonLottery = 0
    for (let offset = 0; offset < 8; offset++) {
      // side A (60%) proposes every other slot only, so B's branch (40%) is twice as long.
      const { viewA, viewB, blocks, start, rootBefore } = partition([60, 20, 20], [0], 8, true, offset)
      expect(viewB.head.height).toBeGreaterThan(viewA.head.height + 2)
      expect(viewA.root.height).toBe(rootBefore)
      expect(viewB.root.height).toBe(rootBefore)
      const forkA = viewA.chainTo().find((n) => n.height === start.height + 1) as BlockNode
      const forkB = viewB.chainTo().find((n) => n.height === start.height + 1) as BlockNode
      if (compareEntrants(forkB, forkA) < 0) minorityWonLottery++
      // heal: each side receives everything
      for (const view of [viewA, viewB]) {
        for (const b of blocks) {
          try {
            view.import(b, timeOf(net, 15))
          } catch (err) {
            expect((err as BlockError).code).toBe('ALREADY_KNOWN')
          }
        }
      }
      expect(viewA.head.hashHex).toBe(viewB.head.hashHex)
      expect(viewB.head.proposerHex).toBe(toHex(signers[offset].publicKey))
    }
    expect(minorityWonLottery).toBeGreaterThan(0)
  })

  it('70/30 split: only the 70% side finalizes, and the 30% side joins it on healing', () => {
    const { viewA, viewB, blocks, rootBefore } = partition([40, 30, 30], [0, 1], 6)
    expect(viewA.root.height).toBeGreaterThan(rootBefore + 3)
    expect(viewB.root.height).toBe(rootBefore)
    const finalA = viewA.root.hashHex
    for (const b of blocks) {
      try {
        viewB.import(b, timeOf(net, 14))
      } catch (err) {
        // its own blocks are known, or pruned once the other branch became final
        expect(['ALREADY_KNOWN', 'UNKNOWN_PARENT', 'BELOW_FINALIZED']).toContain((err as BlockError).code)
      }
    }
    expect(viewB.get(finalA)).toBeDefined()
    expect(viewB.root.height).toBe(viewA.root.height)
    expect(viewB.head.hashHex).toBe(viewA.head.hashHex)
  })

  it('a finalized block is never reverted: a heavier late branch below the root is refused', () => {
    const { viewA } = partition([40, 30, 30], [0, 1], 6)
    const root = viewA.root
    // A conflicting block at the root's height on its parent: below finality, ignored.
    const parent = viewA.root.block as Block
    const fork = blockOn(signers[2], { hash: parent.parent, height: parent.height - 1 }, 23)
    expect(() => viewA.import(fork, timeOf(net, 23))).toThrow(BlockError)
    expect(viewA.root).toBe(root)
  })

  it('joiners on a sibling branch cannot outvote the members there: their stake counts once final', () => {
    const chain = fresh()
    const [a, b, c] = signers
    // A alone founds the network: b1 is final, (b2, 3) justified, with A (10) as the only member.
    const b1 = blockOn(a, { hash: net.id, height: 0 }, 1, [stake(a, 10)])
    importAll(chain, [b1], 1)
    const b2 = blockOn(a, b1, 2)
    importAll(chain, [b2], 2)
    const x3 = blockOn(a, b2, 3)
    importAll(chain, [x3], 3)
    expect(chain.root.hashHex).toBe(b1.hashHex)
    // B and C join on a sibling branch (A's block takes their announcements in) and vote for it.
    // Their stake does not count before y4 is final, so their votes have no weight (before stake
    // waited for finality, they were 90 of fork-choice weight against A's 10 and made y4's branch
    // the head until the members' justification overruled it).
    const y4 = blockOn(a, b2, 4, [stake(b, 30), stake(c, 60)])
    importAll(chain, [y4], 4)
    for (const v of [b, c]) {
      const vote = blockOn(v, y4, 5)
      expect(() => chain.import(vote, timeOf(net, 5))).toThrow(expect.objectContaining({ code: 'NO_WEIGHT' }))
    }
    // A votes for x3: the only validator of the justified state holds all the counted stake, so
    // (x3, 5) is justified and fork choice starts there; its next vote finalizes x3.
    const a5 = blockOn(a, x3, 5)
    importAll(chain, [a5], 5)
    expect(chain.justified().node.hashHex).toBe(x3.hashHex)
    expect(chain.head.hashHex).toBe(a5.hashHex)
    const a6 = blockOn(a, a5, 6)
    importAll(chain, [a6], 6)
    expect(chain.root.hashHex).toBe(x3.hashHex)
    expect(chain.head.hashHex).toBe(a6.hashHex)
    expect(chain.get(y4.hashHex)).toBeUndefined()
  })

  it('when every member of the finalized state has left, the validators who joined since decide', () => {
    const chain = fresh()
    const [a, b, c, d] = signers
    const b1 = blockOn(a, { hash: net.id, height: 0 }, 1, [stake(a, 40)])
    importAll(chain, [b1], 1)
    const b2 = blockOn(a, b1, 2)
    importAll(chain, [b2], 2)
    const x3 = blockOn(a, b2, 3)
    importAll(chain, [x3], 3)
    // B, C and D join (they count once A's block 7 shows y4 final), then A leaves; A keeps voting
    // until its exit delay is over (as a leaving peer does), then goes silent.
    let tip = blockOn(a, x3, 4, [stake(b, 20), stake(c, 20), stake(d, 20)])
    importAll(chain, [tip], 4)
    for (let s = 5; s <= 7; s++) {
      tip = blockOn(a, tip, s)
      importAll(chain, [tip], s)
    }
    expect(chain.head.state.stakes.get(toHex(d.publicKey))?.counted).toBe(20)
    const l8 = blockOn(b, tip, 8, [stake(a, 0)])
    importAll(chain, [l8], 8)
    const exit = 8 + net.params.exitDelaySlots
    let rootWhenSilent = -1
    for (let s = 9; s < 19; s++) {
      if (s === exit) rootWhenSilent = chain.root.height
      const head = chain.head.block as Block
      const voters = s < exit ? [a, b, c, d] : [b, c, d]
      importAll(
        chain,
        voters.map((v) => blockOn(v, head, s)),
        s,
      )
    }
    expect(rootWhenSilent).toBeGreaterThanOrEqual(3)
    expect(chain.root.height).toBeGreaterThan(rootWhenSilent + 3)
  })

  it('a stake raise on a branch counts for finality only once final', () => {
    const { chain } = bootstrap([30, 30, 40])
    const c = signers[2]
    const root = chain.root.height
    // C raises its stake to 1000 on its own branch and keeps voting on it alone.
    let tip = chain.head.block as Block
    tip = blockOn(c, tip, 7, [stake(c, 1000)])
    importAll(chain, [tip], 7)
    for (let s = 8; s < 12; s++) {
      tip = blockOn(c, tip, s)
      importAll(chain, [tip], s)
    }
    expect(chain.head.hashHex).toBe(tip.hashHex)
    expect(chain.root.height).toBe(root)
  })

  it('finality goes on after a validator leaves (stake 0) and stops voting once its exit delay is over', () => {
    const { chain } = bootstrap([30, 30, 40])
    const [a, b, c] = signers
    // C (40%) announces its leave; A and B put it in their blocks until the head chain holds it
    // (as the mempool makes them do), and C votes until its exit delay is over.
    const leave = stake(c, 0)
    const cKey = toHex(c.publicKey)
    let included = -1
    let rootAtExit = -1
    // (Stakes were registered at slot 1 and live 20 slots: the test stays within them.)
    for (let s = 7; s < 20; s++) {
      const head = chain.head.block as Block
      const inHead = (chain.head.state.stakes.get(cKey)?.seq ?? 0) >= leave.seq
      if (inHead && included < 0) included = chain.head.slot
      const exit = included < 0 ? Number.POSITIVE_INFINITY : included + net.params.exitDelaySlots
      if (s === exit) rootAtExit = chain.root.height
      const carry = inHead ? [] : [leave]
      const round = [blockOn(a, head, s, carry), blockOn(b, head, s, carry)]
      if (s < exit) round.push(blockOn(c, head, s))
      importAll(chain, round, s)
    }
    expect(included).toBeGreaterThan(0)
    // A and B (60% before, 100% now) finalize alone once C's stake is gone.
    expect(rootAtExit).toBeGreaterThan(0)
    expect(chain.root.height).toBeGreaterThan(rootAtExit + 3)
  })

  it('a silent validator holding over 1/3 stalls finality (no vote can move its stake away)', () => {
    const { chain } = bootstrap([30, 30, 40])
    const [a, b] = signers
    let head = chain.head.block as Block
    const root = chain.root.height
    for (let s = 7; s < 13; s++) {
      importAll(
        chain,
        [a, b].map((v) => blockOn(v, head, s)),
        s,
      )
      head = chain.head.block as Block
    }
    expect(chain.root.height).toBe(root)
  })

  it("finality resumes after a crashed validator's stake expires (and not before)", () => {
    const { chain } = bootstrap([30, 30, 40])
    const [a, b] = signers
    let head = chain.head.block as Block
    const ttl = net.params.stakeTtlSlots
    let lastRoot = chain.root.height
    let resumedAt = -1
    for (let s = 7; s < 4 + ttl + 6; s++) {
      // A and B renew their stake every 10 slots; C has crashed after slot 6.
      // (both candidates carry the renewals, as the mempool rule makes them do)
      const renew = s % 10 === 0 ? [stake(a, 30), stake(b, 30)] : []
      importAll(chain, [blockOn(a, head, s, renew), blockOn(b, head, s, renew)], s)
      head = chain.head.block as Block
      if (chain.root.height > lastRoot && resumedAt < 0 && s > 7) resumedAt = s
      lastRoot = chain.root.height
    }
    // C registered at slot 1: it counts until slot 1 + ttl.
    expect(resumedAt).toBeGreaterThan(1 + ttl)
    expect(resumedAt).toBeLessThanOrEqual(1 + ttl + 3)
  })
})
