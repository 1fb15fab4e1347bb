import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { Chain } from '../../src/core/chain.js'
import type { Signer } from '../../src/core/crypto.js'
import { BlockError, RecordError } from '../../src/core/errors.js'
import { type Block, createEvidence, createStake, decodeEvidence } from '../../src/core/records.js'
import { activeStake, activeValidators } from '../../src/core/state.js'
import { conflictOf, validateEvidence } from '../../src/core/validation.js'
import { ChainService } from '../../src/node/chain-service.js'
import { Store } from '../../src/storage/store.js'
import { createBlock } from '../helpers/blocks.js'
import { FOUNDED_SLOT, foundChain, testNetwork, testSigners, timeOf, voteOn } from '../helpers/fixtures.js'

// Several validators in one founding block, voting from the next slot: no activation delay and no
// churn limit in the way (they have their own tests).
const net = testNetwork({ activationDelaySlots: 0, minChurn: 10_000 })
let h1: Signer
let h2: Signer
let e: Signer

beforeAll(async () => {
  ;[h1, h2, e] = await testSigners(3, 'slash')
})

/** h1 35, h2 35, e 30 registered in b1 (slot 1) and counting from b5 (slot 5, `foundChain`): one chain, one view. */
function setup(): { chain: Chain; b5: Block; founded: Block[] } {
  const chain = new Chain(net)
  const blocks = foundChain(chain, h1, [
    createStake(net, h1, 35, 1),
    createStake(net, h2, 35, 1),
    createStake(net, e, 30, 1),
  ])
  return { chain, b5: blocks.at(-1) as Block, founded: blocks }
}

function expectBlockError(fn: () => unknown, code: string): void {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BlockError)
    expect((err as BlockError).code).toBe(code)
    return
  }
  expect.unreachable(`expected ${code}`)
}

describe('slashing conditions and evidence', () => {
  it('two blocks of one proposer in one slot are found on import, and the evidence is valid and compact', () => {
    const { chain, b5 } = setup()
    const x = voteOn(chain, e, b5.hashHex, 6)
    const y = voteOn(chain, e, b5.hashHex, 6, { stakes: [createStake(net, e, 30, 2)] })
    expect(chain.import(x, timeOf(net, 6)).evidence).toEqual([])
    const found = chain.import(y, timeOf(net, 6)).evidence
    expect(found).toHaveLength(1)
    expect(conflictOf(found[0].a, found[0].b)).toBe('double')
    expect(() => validateEvidence(net, found[0])).not.toThrow()
    expect(found[0].bytes.byteLength).toBeLessThan(600)
    // One byte form: decoding gives the same evidence; the other order is refused.
    expect(decodeEvidence(found[0].bytes).idHex).toBe(found[0].idHex)
    expect(chain.isExcluded(toHex(e.publicKey))).toBe(true)
  })

  it('a vote that surrounds another is slashable; honest votes (source and target only growing) are not', () => {
    const { chain, b5 } = setup()
    const early = voteOn(chain, e, b5.hashHex, 6)
    const late = voteOn(chain, e, b5.hashHex, 12)
    expect(conflictOf(early, late)).toBeUndefined()
    // Source epoch 5 -> target 12 around source 6 -> target 7: surround.
    expect(late.source.epoch).toBe(5)
    const inner = createBlock(net, e, {
      height: b5.height + 1,
      slot: 7,
      parent: b5.hash,
      readings: [],
      stakes: [],
      source: { hash: b5.hash, epoch: 6 },
    })
    expect(conflictOf(late, inner)).toBe('surround')
    expect(() => validateEvidence(net, createEvidence(late, inner))).not.toThrow()
  })

  it('evidence that proves nothing, or with a forged signature, is refused', () => {
    const { chain, b5 } = setup()
    const x = voteOn(chain, e, b5.hashHex, 6)
    const y = voteOn(chain, e, b5.hashHex, 7)
    expect(() => validateEvidence(net, createEvidence(x, y))).toThrow(RecordError)
    const z = voteOn(chain, e, b5.hashHex, 6, { stakes: [createStake(net, e, 30, 2)] })
    const sig = new Uint8Array(z.signature)
    sig[3] ^= 1
    try {
      validateEvidence(net, createEvidence(x, { ...z, signature: sig }))
      expect.unreachable()
    } catch (err) {
      expect((err as RecordError).code).toBe('INVALID_SIGNATURE')
    }
  })

  it('evidence in a block slashes the offender for good: no stake, no balance, no new announcement', () => {
    const { chain, b5 } = setup()
    const x = voteOn(chain, e, b5.hashHex, 6)
    const y = voteOn(chain, e, b5.hashHex, 6, { stakes: [createStake(net, e, 30, 2)] })
    chain.import(x, timeOf(net, 6))
    const [ev] = chain.import(y, timeOf(net, 6)).evidence
    const key = toHex(e.publicKey)
    const s7 = chain.import(voteOn(chain, h1, x.hashHex, 7, { evidence: [ev] }), timeOf(net, 7)).node
    expect(s7.state.stakes.get(key)?.slashed).toBe(true)
    expect(activeStake(net.params, s7.state, key, 8)).toBe(0)
    expect(s7.state.accounts.get(key)?.free ?? 0).toBe(0)
    expectBlockError(
      () => chain.import(voteOn(chain, h2, s7.hashHex, 8, { stakes: [createStake(net, e, 30, 8)] }), timeOf(net, 8)),
      'SLASHED',
    )
    expectBlockError(
      () => chain.import(voteOn(chain, h2, s7.hashHex, 8, { evidence: [ev] }), timeOf(net, 8)),
      'ALREADY_SLASHED',
    )
  })

  it('a 30% equivocator split across a partition finalizes nothing; healed, both views convict it and finalize one branch', () => {
    const { chain, founded } = setup()
    // Two views that share b1 to b5.
    const v1 = new Chain(net)
    const v2 = new Chain(net)
    for (const v of [v1, v2]) for (const b of founded) v.import(b, timeOf(net, 5))
    // Slots 6-11: h1 and e's first face on side 1, h2 and e's second face on side 2. e signs two
    // blocks every slot (one per side): 65% per side, under the 2/3 needed.
    const sides = [
      { view: v1, honest: h1 },
      { view: v2, honest: h2 },
    ]
    const sent: Block[][] = [[], []]
    for (let s = 6; s < 12; s++) {
      for (const [i, { view, honest }] of sides.entries()) {
        const head = view.head.hashHex
        for (const b of [
          voteOn(view, honest, head, s),
          voteOn(view, e, head, s, { stakes: [createStake(net, e, 30, s)] }),
        ]) {
          view.import(b, timeOf(net, s))
          sent[i].push(b)
        }
      }
    }
    expect(v1.root.height).toBe(v2.root.height)
    const rootBefore = v1.root.hashHex
    expect(v2.root.hashHex).toBe(rootBefore)
    expect(v1.root.height).toBe(chain.root.height) // nothing final during the split
    // Heal: each view receives the other's blocks and finds e's double votes.
    const evidence = [0, 0]
    for (const [i, view] of [v1, v2].entries()) {
      for (const b of sent[1 - i]) {
        try {
          evidence[i] += view.import(b, timeOf(net, 12)).evidence.length
        } catch (err) {
          expect(['ALREADY_KNOWN', 'BELOW_FINALIZED']).toContain((err as BlockError).code)
        }
      }
    }
    expect(evidence).toEqual([1, 1])
    expect(v1.isExcluded(toHex(e.publicKey)) && v2.isExcluded(toHex(e.publicKey))).toBe(true)
    // h1 and h2 (70%) now vote together on the same head in both views, and finalize.
    for (let s = 12; s < 16; s++) {
      const head = v1.head.hashHex
      expect(v2.head.hashHex).toBe(head)
      const round = [voteOn(v1, h1, head, s), voteOn(v2, h2, head, s)]
      for (const v of [v1, v2]) for (const b of round) v.import(b, timeOf(net, s))
    }
    expect(v1.root.height).toBeGreaterThan(chain.root.height + 2)
    expect(v1.root.hashHex).toBe(v2.root.hashHex)
  })
})

describe('slashing protection', () => {
  it('never allows a slot twice or a lower source, and remembers across a reopen', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pos-peer-prot-'))
    try {
      const store = new Store(net, { path: dir })
      await store.open()
      expect(await store.mayPropose(10, 3)).toBe(true)
      expect(await store.mayPropose(10, 3)).toBe(false)
      expect(await store.mayPropose(9, 3)).toBe(false)
      expect(await store.mayPropose(11, 2)).toBe(false)
      expect(await store.mayPropose(11, 3)).toBe(true)
      await store.close()
      const again = new Store(net, { path: dir })
      await again.open()
      expect(await again.mayPropose(11, 5)).toBe(false)
      expect(await again.mayPropose(12, 5)).toBe(true)
      await again.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('a restarted peer does not sign a second block for a slot it signed before', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pos-peer-prot-'))
    try {
      let now = timeOf(net, 5)
      const start = async () => {
        const store = new Store(net, { path: dir })
        await store.open()
        return { store, svc: await ChainService.create({ net, store, signer: h1, now: () => now, stake: 50 }) }
      }
      const first = await start()
      await first.svc.announceStake(50)
      const block = await first.svc.onSlot(5)
      expect(block?.slot).toBe(5)
      await first.svc.flush()
      await first.store.close()
      // Same data dir, same slot (a restart within the slot): the store says no.
      const second = await start()
      const refused: number[] = []
      second.svc.events.on('protected', ({ slot }) => refused.push(slot))
      await second.svc.submitReading(80)
      expect(await second.svc.onSlot(5)).toBeUndefined()
      expect(refused).toEqual([5])
      now = timeOf(net, 6)
      expect((await second.svc.onSlot(6))?.slot).toBe(6)
      await second.svc.flush()
      await second.store.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })

  it('SIGKILL right after a permission: the slot is on disk, a restart never signs it again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'pos-peer-prot-'))
    try {
      let last = -1
      const child = spawn(
        join('node_modules', '.bin', 'vite-node'),
        ['test/helpers/protection-writer.ts', dir, '100'],
        {
          stdio: ['ignore', 'pipe', 'inherit'],
        },
      )
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('writer made no progress')), 60_000)
        child.stdout.on('data', (d: Buffer) => {
          const lines = d.toString().trim().split('\n')
          last = Number(lines.at(-1))
          if (last >= 150) {
            clearTimeout(timer)
            child.kill('SIGKILL')
            resolve()
          }
        })
      })
      await new Promise((r) => child.once('exit', r))
      // The network of the writer (test/helpers/protection-writer.ts).
      const store = new Store(testNetwork(), { path: dir })
      await store.open()
      // Every slot the writer printed (and so may have signed) is refused.
      for (let s = 100; s <= last; s += 7) expect(await store.mayPropose(s, 1)).toBe(false)
      expect(await store.mayPropose(last, 1)).toBe(false)
      await store.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  }, 90_000)
})

describe('the one-round rule versus FFG (honest validators only)', () => {
  /**
   * The one-round rule this replaces: B final when the validators whose latest vote is in B's
   * subtree hold more than 2/3 of the stake active in B's parent state (members of the root state).
   */
  function oneRoundFinal(view: Chain, hashHex: string): boolean {
    const b = view.get(hashHex)
    const parent = b === undefined ? undefined : view.parentOf(b)
    if (b === undefined || parent === undefined) return false
    // (With no exit delay: a leave counted at once.)
    const counted = new Map<string, number>()
    for (const [v, entry] of parent.state.stakes) {
      const m = activeValidators(net.params, view.root.state, b.slot).get(v)
      if (m !== undefined && entry.stake > 0) counted.set(v, Math.min(m, entry.stake))
    }
    let total = 0
    for (const s of counted.values()) total += s
    let voted = 0
    for (const [v, vote] of view.latestVotes()) {
      const target = view.get(vote.target)
      if (target !== undefined && view.isAncestor(b, target)) voted += counted.get(v) ?? 0
    }
    return voted * 3 > total * 2
  }

  it('a leave on one branch and a vote that moved across a reorg, seen late: the old rule finalized both branches, FFG neither', () => {
    // A 30, B 35, C 35, all members of the finalized state.
    const [a, b, c] = [h1, h2, e]
    const view = new Chain(net)
    const history = foundChain(view, a, [
      createStake(net, a, 30, 1),
      createStake(net, b, 35, 1),
      createStake(net, c, 35, 1),
    ])
    // Everyone votes for b5 and then for its child: b5 is final, (b6, 7) justified.
    let head = view.head.hashHex
    for (const s of [6, 7]) {
      const round = [a, b, c].map((v) => voteOn(view, v, head, s))
      for (const blk of round) view.import(blk, timeOf(net, s))
      history.push(...round)
      head = view.head.hashHex
    }
    const base = head
    const rootBefore = view.root.height
    // Slot 8: X (by A) holds C's leave; Y (by C) is its sibling.
    const x = voteOn(view, a, base, 8, { stakes: [createStake(net, c, 0, 2)] })
    const y = voteOn(view, c, base, 8)
    // View 1 sees A and B vote for X at slot 9; view 2 sees B move to Y at slot 10 (an honest
    // reorg: Y looked heavier to B later) and C vote for Y.
    const v1 = new Chain(net)
    const v2 = new Chain(net)
    for (const blk of history) for (const v of [v1, v2]) v.import(blk, timeOf(net, 8))
    for (const v of [v1, v2]) v.import(x, timeOf(net, 8))
    for (const v of [v1, v2]) v.import(y, timeOf(net, 8))
    const ax = voteOn(v1, a, x.hashHex, 9)
    const bx = voteOn(v1, b, x.hashHex, 9)
    for (const blk of [ax, bx]) v1.import(blk, timeOf(net, 9))
    const w = v1.head.hashHex // the slot-9 winner, a child of X: C's leave counts in its parent state
    for (const v of [a, b]) v1.import(voteOn(v1, v, w, 10), timeOf(net, 10))
    const cy = voteOn(v2, c, y.hashHex, 9)
    const by = voteOn(v2, b, y.hashHex, 10)
    for (const blk of [cy, by]) v2.import(blk, timeOf(net, 10))
    // The old rule: X's child final in view 1 (A + B = 65 of the 65 left once C's leave counts at
    // once), Y final in view 2 (B + C = 70 of 100): conflicting finality with no one misbehaving.
    expect(oneRoundFinal(v1, w)).toBe(true)
    expect(oneRoundFinal(v2, y.hashHex)).toBe(true)
    // FFG: nothing new is final in either view (a link needs 2/3 of A, B and C: C's leave waits
    // for a justified block, and B's two votes are for different slots).
    expect(v1.root.height).toBe(rootBefore)
    expect(v2.root.height).toBe(rootBefore)
    expect(conflictOf(bx, by)).toBeUndefined() // B did nothing slashable
    expect(v1.isAncestor(v1.get(x.hashHex) as never, v1.get(w) as never)).toBe(true)
  })
})

describe('more than 1/3 equivocating', () => {
  it('a 40% validator finalizes conflicting blocks on two sides; their blocks convict it on both, and both slash it', () => {
    const [a, b, x] = [h1, h2, e]
    const founded = foundChain(new Chain(net), a, [
      createStake(net, a, 30, 1),
      createStake(net, b, 30, 1),
      createStake(net, x, 40, 1),
    ])
    const sides = [
      { view: new Chain(net), honest: a, blocks: [...founded] },
      { view: new Chain(net), honest: b, blocks: [...founded] },
    ]
    for (const { view } of sides) for (const blk of founded) view.import(blk, timeOf(net, blk.slot))
    // Each side: its honest validator and one face of x (70%) vote every slot; nothing crosses.
    for (let s = 6; s < 13; s++) {
      for (const side of sides) {
        const head = side.view.head.hashHex
        for (const blk of [
          voteOn(side.view, side.honest, head, s),
          voteOn(side.view, x, head, s, { stakes: [createStake(net, x, 40, s)] }),
        ]) {
          side.view.import(blk, timeOf(net, s))
          side.blocks.push(blk)
        }
      }
    }
    const [s1, s2] = sides
    expect(s1.view.root.height).toBeGreaterThan(FOUNDED_SLOT)
    expect(s2.view.root.height).toBeGreaterThan(FOUNDED_SLOT)
    // Conflicting finality: the two final blocks differ and neither side holds the other's.
    expect(s1.view.root.hashHex).not.toBe(s2.view.root.hashHex)
    expect(s1.view.has(s2.view.root.hashHex) || s2.view.has(s1.view.root.hashHex)).toBe(false)
    // Connected: each side reads the other's blocks (what status and range sync now do before
    // refusing the peer) and finds x's double votes.
    for (const [i, side] of sides.entries()) {
      const other = sides[1 - i]
      const found = other.blocks
        .slice(founded.length)
        .map((blk) => side.view.inspect(blk))
        .filter((ev) => ev !== undefined)
      expect(found).toHaveLength(1)
      expect(toHex(found[0].a.proposer)).toBe(toHex(x.publicKey))
      // Its honest validator puts the evidence in its next block: x is slashed on this side.
      const slot = 13
      const blk = voteOn(side.view, side.honest, side.view.head.hashHex, slot, { evidence: found })
      const node = side.view.import(blk, timeOf(net, slot)).node
      expect(node.state.stakes.get(toHex(x.publicKey))?.slashed).toBe(true)
    }
  })
})
