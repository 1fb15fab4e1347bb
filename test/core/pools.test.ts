import { describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { Chain } from '../../src/core/chain.js'
import { MAX_PENDING_STAKES, Mempool } from '../../src/core/mempool.js'
import { OrphanPool } from '../../src/core/orphans.js'
import { createReading, createStake } from '../../src/core/records.js'
import { createBlock } from '../helpers/blocks.js'
import { testNetwork, testSigners, timeOf, voteOn } from '../helpers/fixtures.js'

const net = testNetwork({ maxReadingsPerBlock: 3, maxStakesPerBlock: 2 })

describe('mempool', () => {
  it('holds at most MAX_PENDING_STAKES announcements: a new key then waits, a pending validator may still update', async () => {
    const keys = await testSigners(MAX_PENDING_STAKES + 1, 'stake-pool')
    const pool = new Mempool()
    for (const k of keys.slice(0, MAX_PENDING_STAKES)) expect(pool.addStake(createStake(net, k, 1, 1))).toBe(true)
    expect(pool.addStake(createStake(net, keys[MAX_PENDING_STAKES], 1, 1))).toBe(false)
    expect(pool.addStake(createStake(net, keys[0], 2, 2))).toBe(true)
    expect(pool.size).toBe(MAX_PENDING_STAKES)
  })

  it("keeps readings once, refuses beyond its bound, and orders one author's pending readings by time then id", async () => {
    const [a] = await testSigners(1, 'mp')
    const pool = new Mempool({ maxReadings: 4 })
    const rs = [5, 3, 9, 1, 7].map((t, i) => createReading(net, a, 60 + i, 1000 + t))
    expect(pool.addReading(rs[0])).toBe('added')
    expect(pool.addReading(rs[0])).toBe('known')
    for (const r of rs.slice(1, 4)) expect(pool.addReading(r)).toBe('added')
    expect(pool.addReading(rs[4])).toBe('full') // full, and nobody else to displace
    expect(pool.size).toBe(4)
    const chain = new Chain(net)
    // At most maxReadingsPerBlock, oldest first.
    expect(pool.pending(chain).readings.map((r) => r.time)).toEqual([1001, 1003, 1005])
  })

  it('an author at its quota is refused while others still get in; a full pool displaces the largest author', async () => {
    const [spam, honest, third] = await testSigners(3, 'quota')
    const pool = new Mempool({ maxReadings: 6, maxPerAuthor: 4 })
    for (let i = 0; i < 4; i++) expect(pool.addReading(createReading(net, spam, 70, 1 + i))).toBe('added')
    expect(pool.addReading(createReading(net, spam, 70, 100))).toBe('author-quota')
    expect(pool.addReading(createReading(net, honest, 80, 5000))).toBe('added')
    expect(pool.addReading(createReading(net, third, 81, 5001))).toBe('added')
    // Full (6): a newcomer displaces the newest reading of the author with the most pending.
    expect(pool.addReading(createReading(net, honest, 82, 5002))).toBe('added')
    expect(pool.size).toBe(6)
    const chain = new Chain(net)
    const times = pool.pending(chain).readings.map((r) => r.time)
    expect(times).toContain(5000)
    expect(times).not.toContain(4) // the spammer's newest went
    // This peer's own readings always enter (its outbox bounds them).
    const own = createReading(net, spam, 90, 6000)
    expect(pool.addReading(own, { own: true })).toBe('added')
    expect(pool.hasReading(own.idHex)).toBe(true)
  })

  it('a pool filled by many keys refuses their next reading (each has its fair share) and still takes a newcomer', async () => {
    const spam = await testSigners(50, 'many')
    const [honest] = await testSigners(1, 'many-honest')
    const pool = new Mempool({ maxReadings: 101, maxPerAuthor: 256 })
    for (let i = 0; i < 101; i++) expect(pool.addReading(createReading(net, spam[i % 50], 70, 1 + i))).toBe('added')
    // Full, two each (three for the first): one more from any of them would only push out another's
    // (the churn that kept spam flowing through every relay); it is refused before its signature is checked.
    const more = createReading(net, spam[7], 71, 500)
    expect(pool.admits(more)).toBe('full')
    expect(pool.addReading(more)).toBe('full')
    const mine = createReading(net, honest, 80, 600)
    expect(pool.admits(mine)).toBeUndefined()
    expect(pool.addReading(mine)).toBe('added')
    expect(pool.size).toBe(101)
    expect(pool.hasReading(mine.idHex)).toBe(true)
  })

  it('block building is fair across authors: 10,000 old readings of one key do not keep a newer honest one out', async () => {
    const [spam, honest] = await testSigners(2, 'fair')
    const pool = new Mempool({ maxReadings: 20_000, maxPerAuthor: 20_000 })
    // Timestamps 1, 2, 3, ...: oldest-first selection used to take only these.
    for (let i = 0; i < 10_000; i++) pool.addReading(createReading(net, spam, 70, 1 + i))
    const mine = createReading(net, honest, 80, 1_000_000)
    pool.addReading(mine)
    const chain = new Chain(net)
    const picked = pool.pending(chain).readings
    expect(picked).toHaveLength(net.params.maxReadingsPerBlock)
    expect(picked.map((r) => r.idHex)).toContain(mine.idHex)
    // Round-robin: the author with the oldest reading first, then the other, then again.
    expect(picked.map((r) => r.time)).toEqual([1, 1_000_000, 2])
  })

  it('keeps the highest seq per validator, and drops what the finalized chain holds', async () => {
    const [a, b] = await testSigners(2, 'mp2')
    const pool = new Mempool()
    expect(pool.addStake(createStake(net, a, 10, 2))).toBe(true)
    expect(pool.addStake(createStake(net, a, 20, 1))).toBe(false) // older seq
    expect(pool.addStake(createStake(net, a, 30, 3))).toBe(true)
    const chain = new Chain(net)
    expect(pool.pending(chain, chain.head, undefined, 3).stakes.map((s) => [toHex(s.validator), s.stake])).toEqual([
      [toHex(a.publicKey), 30],
    ])
    const r = createReading(net, b, 70, timeOf(net, 1))
    expect(pool.addReading(r)).toBe('added')
    // a alone finalizes: b1 (a's stake), b2 (the reading), b3 and b4 (votes justifying b2, then b3).
    const b1 = createBlock(net, a, {
      height: 1,
      slot: 3,
      parent: net.id,
      readings: [],
      stakes: [createStake(net, a, 30, 3)],
    })
    chain.import(b1, timeOf(net, 3))
    const b2 = voteOn(chain, a, b1.hashHex, 4, { readings: [r] })
    chain.import(b2, timeOf(net, 4))
    const b3 = voteOn(chain, a, b2.hashHex, 5)
    chain.import(b3, timeOf(net, 5))
    chain.import(voteOn(chain, a, b3.hashHex, 6), timeOf(net, 6))
    expect(chain.root.height).toBe(2)
    const dropped = pool.pruneFinal(chain)
    expect(dropped).toContain(r.idHex)
    expect(pool.hasReading(r.idHex)).toBe(false)
    expect(pool.size).toBe(0)
  })
})

describe('orphan pool', () => {
  it('holds children by parent, hands them over once, and evicts the oldest when full', async () => {
    const [a] = await testSigners(1, 'orph')
    const parentA = new Uint8Array(32).fill(1)
    const parentB = new Uint8Array(32).fill(2)
    const mk = (parent: Uint8Array, slot: number) =>
      createBlock(net, a, { height: 5, slot, parent, readings: [], stakes: [] })
    const pool = new OrphanPool(3)
    const [x1, x2, y1, y2] = [mk(parentA, 1), mk(parentA, 2), mk(parentB, 3), mk(parentB, 4)]
    expect(pool.add(x1)).toBe(true)
    expect(pool.add(x1)).toBe(false)
    pool.add(x2)
    pool.add(y1)
    expect(pool.size).toBe(3)
    pool.add(y2) // full: x1, the oldest, goes
    expect(pool.size).toBe(3)
    expect(pool.has(x1.hashHex)).toBe(false)
    expect(pool.takeChildren(toHex(parentA)).map((b) => b.hashHex)).toEqual([x2.hashHex])
    expect(pool.takeChildren(toHex(parentA))).toEqual([])
    expect(pool.takeChildren(toHex(parentB)).map((b) => b.hashHex)).toEqual([y1.hashHex, y2.hashHex])
    expect(pool.size).toBe(0)
  })
})
