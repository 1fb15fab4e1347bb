import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { RecordError } from '../../src/core/errors.js'
import { MAX_PENDING_PER_AUTHOR } from '../../src/core/mempool.js'
import { slotStart } from '../../src/core/params.js'
import { createReading, createStake, encodeReading, type Reading } from '../../src/core/records.js'
import { isEjected } from '../../src/core/state.js'
import { SPAM_CODES } from '../../src/network/gossip.js'
import { BusyError, ChainService, MAX_OUTBOX } from '../../src/node/chain-service.js'
import { urgentGossip } from '../../src/node/gossip-handlers.js'
import { Store } from '../../src/storage/store.js'
import { createBlock, foundingBlock } from '../helpers/blocks.js'
import { testGenesisNetwork, testNetwork, testSigners, timeOf, voteOn } from '../helpers/fixtures.js'

const net = testNetwork()

describe('chain service', () => {
  it("a reading whose author holds counted stake goes first in gossip's validation queue; a stranger's does not", async () => {
    const [me, a, stranger] = await testSigners(3, 'urgent')
    const store = new Store(net)
    await store.open()
    const svc = await ChainService.create({ net, store, signer: me, now: () => timeOf(net, 2), stake: 0 })
    const urgent = urgentGossip(svc)
    const byA = encodeReading(createReading(net, a, 70, timeOf(net, 2)))
    expect(urgent('readings', byA)).toBe(false)
    expect(svc.receiveBlock(foundingBlock(net, a, [createStake(net, a, 40, 1)]))).toBe('accept')
    expect(urgent('readings', byA)).toBe(true)
    expect(urgent('readings', encodeReading(createReading(net, stranger, 70, timeOf(net, 2))))).toBe(false)
    expect(urgent('stakes', byA)).toBe(false)
    await svc.flush()
    await store.close()
  })

  it('an orphan from the network names its sender in the missing-parent event', async () => {
    const [me, other] = await testSigners(2, 'cs')
    const store = new Store(net)
    await store.open()
    const svc = await ChainService.create({ net, store, signer: me, now: () => timeOf(net, 5), stake: 0 })
    const seen: { parentHex: string; source?: string }[] = []
    svc.events.on('missing-parent', (e) => seen.push(e))
    const parent = new Uint8Array(32).fill(3)
    const orphan = createBlock(net, other, {
      height: 4,
      slot: 4,
      parent,
      readings: [],
      stakes: [createStake(net, other, 1, 1)],
    })
    expect(svc.receiveBlock(orphan, { source: '12D3KooWsender' })).toBe('ignore')
    expect(seen).toEqual([
      { parentHex: Buffer.from(parent).toString('hex'), childHex: orphan.hashHex, source: '12D3KooWsender' },
    ])
    // The same orphan again: already held, no second fetch.
    svc.receiveBlock(orphan, { source: '12D3KooWother' })
    expect(seen).toHaveLength(1)
    await svc.flush()
    await store.close()
  })

  it('a block of a slot our (slow) clock has not reached is held, not lost, and imported once it has', async () => {
    const [me, other] = await testSigners(2, 'early')
    const store = new Store(net)
    await store.open()
    let now = slotStart(net.params, 8) - net.params.maxClockDriftMs - 200
    const svc = await ChainService.create({ net, store, signer: me, now: () => now, stake: 0 })
    const block = createBlock(net, other, {
      height: 1,
      slot: 8,
      parent: net.id,
      readings: [],
      stakes: [createStake(net, other, 10, 1)],
    })
    expect(svc.receiveBlock(block)).toBe('ignore')
    expect(svc.early.size).toBe(1)
    // A block too far ahead, or a forged one, is not held.
    const far = createBlock(net, other, { height: 1, slot: 8 + 1000, parent: net.id, readings: [], stakes: [] })
    svc.receiveBlock(far)
    svc.receiveBlock({ ...block, hashHex: 'ff'.repeat(32), signature: new Uint8Array(64) })
    expect(svc.early.size).toBe(1)
    svc.releaseEarly()
    expect(svc.chain.head.height).toBe(0)
    now += 300
    svc.releaseEarly()
    expect(svc.chain.head.hashHex).toBe(block.hashHex)
    expect(svc.early.size).toBe(0)
    await svc.flush()
    await store.close()
  })
})

describe('readings too old for any block', () => {
  it('are ignored at gossip, and this peer’s own leave the outbox (kept on disk) with a warning', async () => {
    const small = testNetwork({ maxReadingAgeMs: 10_000 })
    const [me, other] = await testSigners(2, 'age')
    const dir = await mkdtemp(join(tmpdir(), 'pos-peer-age-'))
    try {
      let now = timeOf(small, 5)
      const open = async () => {
        const store = new Store(small, { path: dir })
        await store.open()
        return { store, svc: await ChainService.create({ net: small, store, signer: me, now: () => now, stake: 0 }) }
      }
      const first = await open()
      const old = createReading(small, other, 70, now - 20_000)
      expect(() => first.svc.receiveReading(old)).toThrow(
        expect.objectContaining({ code: 'TIME_OUT_OF_RANGE', action: 'IGNORE' }),
      )
      const mine = await first.svc.submitReading(72)
      // Offline for longer than the bound: the next slot drops it, says so, and the store forgets it.
      now += 60_000
      const warnings: string[] = []
      first.svc.events.on('expired', ({ message }) => warnings.push(message))
      await first.svc.onSlot(Math.floor((now - small.params.genesisTime) / small.params.slotMs))
      expect(warnings).toHaveLength(1)
      expect(warnings[0]).toMatch(/1 reading\(s\) of this peer older than/)
      expect(first.svc.unconfirmed().readings.map((r) => r.idHex)).not.toContain(mine.idHex)
      await first.svc.flush()
      await first.store.close()
      const second = await open()
      expect(second.svc.unconfirmed().readings).toEqual([])
      await second.store.close()
    } finally {
      await rm(dir, { recursive: true, force: true })
    }
  })
})

describe('proposing applies the block rules to what it builds', () => {
  it('a reading dated past this slot’s bound (but within gossip’s) waits; the candidate is built and valid', async () => {
    const [me, other] = await testSigners(2, 'poison')
    const store = new Store(net)
    await store.open()
    let now = timeOf(net, 20) - Math.floor(net.params.slotMs / 2) + 5 // 5 ms into slot 20
    const svc = await ChainService.create({ net, store, signer: me, now: () => now, stake: 10 })
    // Dated now + 1.5 slots: gossip's bound (now + drift + slot) takes it; slot 20's block may not.
    const poisoned = createReading(net, other, 80, now + net.params.slotMs + net.params.maxClockDriftMs)
    expect(svc.receiveReading(poisoned)).toBe('accept')
    const honest = createReading(net, other, 70, now - 100)
    expect(svc.receiveReading(honest)).toBe('accept')
    const block = await svc.onSlot(20)
    expect(block?.readings.map((r) => r.idHex)).toEqual([honest.idHex])
    // A slot later it is valid, and goes in.
    now += net.params.slotMs
    const next = await svc.onSlot(21)
    expect(next?.readings.map((r) => r.idHex)).toEqual([poisoned.idHex])
    await svc.flush()
    await store.close()
  })

  it('a candidate goes out as soon as it is signed, before this peer imports it', async () => {
    const [me] = await testSigners(1, 'first')
    const store = new Store(net)
    await store.open()
    const svc = await ChainService.create({ net, store, signer: me, now: () => timeOf(net, 20), stake: 10 })
    await svc.submitReading(70)
    const order: string[] = []
    svc.events.on('candidate', ({ local }) => order.push(local ? 'imported' : 'other'))
    const block = await svc.onSlot(20, (b) =>
      order.push(`published ${b.slot} ${svc.chain.get(b.hashHex) === undefined ? 'unknown here' : 'known'}`),
    )
    expect(block?.slot).toBe(20)
    expect(order).toEqual(['published 20 unknown here', 'imported'])
    await svc.flush()
    await store.close()
  })

  it('a typed reading is in the pool, and out, while its outbox write waits; a failed write takes it back out', async () => {
    const [me] = await testSigners(1, 'typed-first')
    const store = new Store(net)
    await store.open()
    const svc = await ChainService.create({ net, store, signer: me, now: () => timeOf(net, 20), stake: 10 })
    // The outbox write waits (behind the chain's, as under a spam) until we let it go.
    const write = store.addOutboxReading.bind(store)
    let release = () => {}
    store.addOutboxReading = (r) =>
      new Promise<void>((resolve) => {
        release = resolve
      }).then(() => write(r))
    const published: string[] = []
    let saved = false
    const typed = svc
      .submitReading(71, (r) => published.push(r.idHex))
      .then((r) => {
        saved = true
        return r
      })
    await new Promise((r) => setTimeout(r, 20))
    expect(saved).toBe(false)
    expect(published).toHaveLength(1)
    expect(svc.mempool.hasReading(published[0])).toBe(true)
    // The next candidate holds it though the write is not done.
    const block = await svc.onSlot(20)
    expect(block?.readings.map((r) => r.idHex)).toEqual(published)
    release()
    expect((await typed).idHex).toBe(published[0])
    expect(saved).toBe(true)
    // A write that fails: the user hears it, and the reading leaves the pool and the outbox.
    store.addOutboxReading = () => Promise.reject(new Error('disk full'))
    const failed: string[] = []
    await expect(svc.submitReading(72, (r) => failed.push(r.idHex))).rejects.toThrow('disk full')
    expect(svc.mempool.hasReading(failed[0])).toBe(false)
    expect(svc.unconfirmed().readings.map((r) => r.idHex)).not.toContain(failed[0])
    await svc.flush()
    await store.close()
  })

  it('a reading dated in the future is ignored at gossip (our clock may be the wrong one), not rejected', async () => {
    const [me, other] = await testSigners(2, 'future')
    const store = new Store(net)
    await store.open()
    const now = timeOf(net, 20)
    const svc = await ChainService.create({ net, store, signer: me, now: () => now, stake: 0 })
    const ahead = createReading(net, other, 80, now + 5 * net.params.slotMs)
    expect(() => svc.receiveReading(ahead)).toThrow(
      expect.objectContaining({ action: 'IGNORE', code: 'TIME_OUT_OF_RANGE' }),
    )
    await svc.flush()
    await store.close()
  })
})

describe('honest refusals', () => {
  it(`the ${MAX_OUTBOX + 1}th reading of this peer still pending is refused with BusyError, not taken and never proposed`, async () => {
    const [me] = await testSigners(1, 'busy')
    const store = new Store(net)
    await store.open()
    let t = timeOf(net, 5)
    // Each reading gets its own time (ids differ); no slot runs, so none becomes final.
    const svc = await ChainService.create({ net, store, signer: me, now: () => t++, stake: 0 })
    for (let i = 0; i < MAX_OUTBOX; i++) await svc.submitReading(60 + (i % 100))
    await expect(svc.submitReading(70)).rejects.toBeInstanceOf(BusyError)
    await expect(svc.submitReading(70)).rejects.toThrow(/still waiting to be final \(at most 4096\)/)
    expect(svc.mempool.size).toBe(MAX_OUTBOX)
    await svc.flush()
    await store.close()
  }, 60_000)
})

describe('gossiping our readings again', () => {
  it(`sends the oldest ${MAX_PENDING_PER_AUTHOR} not in the chain, what another pool takes of one author`, async () => {
    const [me] = await testSigners(1, 'again')
    const store = new Store(net)
    await store.open()
    let t = timeOf(net, 5)
    const svc = await ChainService.create({ net, store, signer: me, now: () => t++, stake: 0 })
    const mine: Reading[] = []
    for (let i = 0; i < MAX_PENDING_PER_AUTHOR + 50; i++) mine.push(await svc.submitReading(60 + (i % 100)))
    const again = svc.unconfirmed().readings
    expect(again.map((r) => r.idHex)).toEqual(mine.slice(0, MAX_PENDING_PER_AUTHOR).map((r) => r.idHex))
    await svc.flush()
    await store.close()
  })
})

describe('stake activation: delay and churn limit', () => {
  it('a flood of 2^32 stakes counts only after the delay and at most the churn limit per block; a warning says so', async () => {
    const [a, ...flood] = await testSigners(5, 'churn')
    const p = net.params
    const store = new Store(net)
    await store.open()
    let now = timeOf(net, 1)
    const svc = await ChainService.create({ net, store, signer: a, now: () => now, stake: 0 })
    const warnings: string[] = []
    svc.events.on('warning', ({ message }) => warnings.push(message))
    const b1 = foundingBlock(net, a, [createStake(net, a, 100, 1)])
    expect(svc.receiveBlock(b1, {})).toBe('accept')
    now = timeOf(net, 2)
    const big = flood.map((s) => createStake(net, s, p.maxStake, 1))
    let parent = createBlock(net, a, { height: 2, slot: 2, parent: b1.hash, readings: [], stakes: big })
    expect(svc.receiveBlock(parent, {})).toBe('accept')
    expect(warnings.join('\n')).toMatch(
      /new stake is growing fast: 17179869184 from 4 validator\(s\) waits to count, 100 counts now/,
    )
    const floodStake = (n: { state: typeof svc.chain.head.state }) =>
      flood.reduce((x, s) => x + (n.state.stakes.get(toHex(s.publicKey))?.counted ?? 0), 0)
    let counted = 100
    for (let slot = 3; slot <= 2 + p.activationDelaySlots + 6; slot++) {
      now = timeOf(net, slot)
      const before = floodStake(svc.chain.head)
      parent = voteOn(svc.chain, a, parent.hashHex, slot)
      expect(svc.receiveBlock(parent, {})).toBe('accept')
      const after = floodStake(svc.chain.head)
      if (slot < 2 + p.activationDelaySlots) expect(after).toBe(0)
      else expect(after - before).toBe(Math.max(p.minChurn, Math.floor(counted / p.churnQuotient)))
      counted = 100 + after
    }
    // First in, first counted: the flood enters one validator at a time, in the block's order.
    const order = [...big].sort((x, y) => (toHex(x.validator) < toHex(y.validator) ? -1 : 1))
    expect(svc.chain.head.state.stakes.get(toHex(order[0].validator))?.counted).toBe(floodStake(svc.chain.head))
    expect(svc.chain.head.state.queue[0]).toBe(toHex(order[0].validator))
    // The founder's 100 still counts; six blocks after the delay the flood holds well under all of it.
    expect(floodStake(svc.chain.head)).toBeLessThan(p.maxStake / 1000)
    await svc.flush()
    await store.close()
  })
})

describe('the inactivity leak, as this peer sees it', () => {
  it('when the leak takes our stake the user is told once, and the stake is announced again', async () => {
    const net = testNetwork({ stakeTtlSlots: 600, activationDelaySlots: 0, minChurn: 10_000, inactivityBlocks: 16 })
    const [me, a, silent] = await testSigners(3, 'eject')
    const store = new Store(net)
    await store.open()
    let now = timeOf(net, 1)
    const svc = await ChainService.create({ net, store, signer: me, now: () => now, stake: 30 })
    const warnings: string[] = []
    svc.events.on('warning', ({ message }) => warnings.push(message))
    // a (40) proposes every slot; this peer (30) and another 40 never vote: once they count (a's
    // block 4 shows block 1 final) a alone cannot justify anything, and after 16 stalled blocks
    // the leak takes both silent stakes.
    const b1 = foundingBlock(net, a, [
      createStake(net, a, 40, 1),
      createStake(net, me, 30, 1),
      createStake(net, silent, 40, 1),
    ])
    expect(svc.receiveBlock(b1)).toBe('accept')
    let head = b1.hashHex
    for (let slot = 2; slot <= 25; slot++) {
      now = timeOf(net, slot)
      const b = voteOn(svc.chain, a, head, slot)
      expect(svc.receiveBlock(b)).toBe('accept')
      head = b.hashHex
    }
    const mine = svc.chain.head.state.stakes.get(toHex(me.publicKey))
    expect(mine?.ejectedAt).toBeDefined()
    expect(mine?.stake).toBe(0)
    expect(isEjected(mine)).toBe(true)
    expect(svc.chain.head.state.stakes.get(toHex(a.publicKey))?.ejectedAt).toBeUndefined()
    // The next slot: told once, and our stake is due again.
    expect(svc.stakeDue(26)).toBe(30)
    expect(svc.stakeDue(26)).toBe(30)
    expect(warnings.filter((w) => w.includes('inactivity leak took'))).toHaveLength(1)
    await svc.flush()
    await store.close()
  })
})

describe('a full stake table, as this peer sees it', () => {
  it('a new key’s stake from gossip is TABLE_FULL (ignored, counted as spam, before its signature is checked); our own waits, with one warning', async () => {
    const net = testNetwork({ maxValidators: 1, activationDelaySlots: 0, minChurn: 10_000 })
    const [me, a, stranger] = await testSigners(3, 'table-full')
    const store = new Store(net)
    await store.open()
    let now = timeOf(net, 1)
    const svc = await ChainService.create({ net, store, signer: me, now: () => now, stake: 30 })
    const warnings: string[] = []
    svc.events.on('warning', ({ message }) => warnings.push(message))
    const b1 = foundingBlock(net, a, [createStake(net, a, 40, 1)])
    expect(svc.receiveBlock(b1)).toBe('accept')
    now = timeOf(net, 2)
    const forged = { ...createStake(net, stranger, 5, 2), signature: new Uint8Array(64) }
    for (const s of [createStake(net, stranger, 5, 2), forged]) {
      const err = (() => {
        try {
          svc.receiveStake(s)
        } catch (e) {
          return e as RecordError
        }
      })()
      expect(err).toBeInstanceOf(RecordError)
      expect([err?.action, err?.code]).toEqual(['IGNORE', 'TABLE_FULL'])
    }
    expect(SPAM_CODES.has('TABLE_FULL')).toBe(true)
    // The member renews as usual.
    expect(svc.receiveStake(createStake(net, a, 45, 2))).toBe('accept')
    // Our own stake cannot join: the user is told once.
    svc.stakeDue(2)
    svc.stakeDue(3)
    expect(warnings.filter((w) => w.includes('the stake table is full (1 validators'))).toHaveLength(1)
    await svc.flush()
    await store.close()
  })
})

describe('the reading fee, as this peer sees it', () => {
  it('a reading whose author cannot pay is FEE_UNPAID at gossip (a spam code, before its signature); our own is refused in words', async () => {
    const [me, rich, poor] = await testSigners(3, 'fee')
    const net = testGenesisNetwork([[rich, 10]], { readingFee: 4 })
    const store = new Store(net)
    await store.open()
    const now = timeOf(net, 1)
    const svc = await ChainService.create({ net, store, signer: me, now: () => now, stake: 0 })
    const read = (s: typeof me, bpm: number) => createReading(net, s, bpm, now - 100)
    // rich (10 tokens) pays for two readings, not a third; poor (none) for none, forged or not.
    expect(svc.receiveReading(read(rich, 60))).toBe('accept')
    expect(svc.receiveReading(read(rich, 61))).toBe('accept')
    const forged = { ...read(poor, 70), signature: new Uint8Array(64) }
    for (const r of [read(rich, 62), read(poor, 70), forged]) {
      const err = (() => {
        try {
          svc.receiveReading(r)
        } catch (e) {
          return e as RecordError
        }
      })()
      expect([err?.action, err?.code]).toEqual(['IGNORE', 'FEE_UNPAID'])
    }
    expect(SPAM_CODES.has('FEE_UNPAID')).toBe(true)
    // This peer's account has no tokens: its user is told why, and nothing is kept.
    await expect(svc.submitReading(72)).rejects.toThrow(/a reading costs 4 token\(s\) on this network.*has 0 free/)
    expect(svc.mempool.readingsOf(toHex(me.publicKey))).toBe(0)
    await svc.flush()
    await store.close()
  })
})
