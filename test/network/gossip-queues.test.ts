import { randomBytes } from 'node:crypto'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { type Message, type PeerId, TopicValidatorResult } from '@libp2p/interface'
import { afterEach, describe, expect, it } from 'vitest'
import { signerFromLibp2pKey } from '../../src/core/crypto.js'
import { createReading, encodeReading } from '../../src/core/records.js'
import { GossipQueues, READ_AHEAD } from '../../src/network/gossip-queues.js'
import { topicName } from '../../src/network/topics.js'
import { testNetwork } from '../helpers/fixtures.js'
import { TestNet, waitFor } from '../helpers/peers.js'

const { Accept, Ignore } = TopicValidatorResult
const nextTurn = () => new Promise((r) => setImmediate(r))
/** A validation that notes its name in `log` when it runs, and accepts. */
const logged = (log: string[], name: string) => () => {
  log.push(name)
  return Accept
}

describe('gossip validation queues', () => {
  it('while the event loop is busy, validates blocks first, then urgent readings, then the rest in arrival order', async () => {
    // A clock that says a turn is always used up: every message waits for the queue's turn.
    let t = 0
    const q = new GossipQueues({ now: () => (t += 100) })
    const order: string[] = []
    const job = (name: string) => logged(order, name)
    const all = [
      q.validate('readings', false, job('r1')),
      q.validate('readings', false, job('r2')),
      q.validate('stakes', false, job('s1')),
      q.validate('readings', true, job('r3 (a validator)')),
      q.validate('candidates', false, job('block')),
    ]
    expect(order).toEqual([])
    expect(await Promise.all(all)).toEqual([Accept, Accept, Accept, Accept, Accept])
    expect(order).toEqual(['block', 's1', 'r3 (a validator)', 'r1', 'r2'])
  })

  it('validates at once while nothing waits and the current turn is young', async () => {
    let now = 0
    const q = new GossipQueues({ now: () => now, turnMs: 20 })
    const order: string[] = []
    // The first message after idle starts a turn; within 20 ms the next ones run inline.
    const first = q.validate('readings', false, logged(order, 'a'))
    await first
    const second = q.validate('readings', false, logged(order, 'b'))
    expect(order).toEqual(['a', 'b'])
    await second
    now += 25
    const third = q.validate('readings', false, logged(order, 'c'))
    expect(order).toEqual(['a', 'b'])
    expect(await third).toBe(Accept)
    expect(order).toEqual(['a', 'b', 'c'])
  })

  it('gives the event loop back after turnMs: a long queue does not hold it', async () => {
    let now = 0
    const q = new GossipQueues({ now: () => now, turnMs: 20 })
    let ran = 0
    const jobs: Promise<TopicValidatorResult>[] = []
    now = 1000
    for (let i = 0; i < 100; i++)
      jobs.push(
        q.validate('readings', false, () => {
          ran++
          now += 1 // each validation takes 1 ms
          return Accept
        }),
      )
    await nextTurn()
    // One turn: 20 validations of 1 ms each, then everything else gets its turn.
    expect(ran).toBe(20)
    await Promise.all(jobs)
    expect(ran).toBe(100)
  })

  it('a full queue drops its oldest regular message unvalidated (Ignore); an urgent one is not pushed out by a regular one', async () => {
    let t = 0
    const q = new GossipQueues({ now: () => (t += 100), max: { readings: 3 } })
    const ran: string[] = []
    const job = (name: string) => logged(ran, name)
    const u = q.validate('readings', true, job('urgent'))
    const a = q.validate('readings', false, job('a'))
    const b = q.validate('readings', false, job('b'))
    const c = q.validate('readings', false, job('c'))
    expect(await a).toBe(Ignore)
    expect(q.stats.dropped).toBe(1)
    expect(await Promise.all([u, b, c])).toEqual([Accept, Accept, Accept])
    expect(ran).toEqual(['urgent', 'b', 'c'])
  })

  it("in a lane the senders take turns: one reading from an honest peer is not queued behind a spammer's thousand", async () => {
    let t = 0
    const q = new GossipQueues({ now: () => (t += 100) })
    const order: string[] = []
    const all: Promise<TopicValidatorResult>[] = []
    const send = (peer: string, name: string) =>
      all.push(q.validate('readings', false, logged(order, name), { peer, bytes: 100 }))
    for (let i = 0; i < 1000; i++) send('spammer', `s${i}`)
    send('honest', 'h0')
    send('honest', 'h1')
    await Promise.all(all)
    expect(order.slice(0, 5)).toEqual(['s0', 'h0', 's1', 'h1', 's2'])
    expect(order).toHaveLength(1002)
  })

  it("a full queue drops a message of its busiest sender, not the quiet one's", async () => {
    let t = 0
    const q = new GossipQueues({ now: () => (t += 100), max: { readings: 4 } })
    const ran: string[] = []
    const send = (peer: string, name: string) => q.validate('readings', false, logged(ran, name), { peer, bytes: 100 })
    const results = [
      send('quiet', 'q0'),
      send('busy', 'b0'),
      send('busy', 'b1'),
      send('busy', 'b2'),
      send('quiet', 'q1'),
    ]
    expect(await Promise.all(results)).toEqual([Accept, Ignore, Accept, Accept, Accept])
    expect(ran).toEqual(['q0', 'b1', 'q1', 'b2'])
  })

  it("reads ahead of a peer's validations up to a bound: its reader waits while that many wait, and goes on when one is done", async () => {
    let t = 0
    const q = new GossipQueues({ now: () => (t += 100), readAhead: { messages: 3, bytes: 1000 } })
    const from = { peer: 'p', bytes: 10 }
    const first = [1, 2].map(() => q.validate('readings', false, () => Accept, from))
    // Two waiting, room for a third.
    let read = false
    await q.room('p').then(() => (read = true))
    expect(read).toBe(true)
    const third = q.validate('readings', false, () => Accept, from)
    expect(q.backlogOf('p')).toBe(3)
    read = false
    const reader = q.room('p').then(() => (read = true))
    // Another peer is not held back by p's backlog.
    await q.room('other')
    expect(read).toBe(false)
    await Promise.all([...first, third])
    await reader
    expect(read).toBe(true)
    expect(q.backlogOf('p')).toBe(0)
    // Bytes count too: one message of 1,000 bytes fills the room.
    const big = q.validate('candidates', false, () => Accept, { peer: 'p', bytes: 1000 })
    read = false
    const bigReader = q.room('p').then(() => (read = true))
    for (let i = 0; i < 5; i++) await Promise.resolve()
    expect(read).toBe(false)
    await big
    await bigReader
    expect(read).toBe(true)
  })

  it('a peer that may not read ahead (it delivered no block) is read once all its messages are validated', async () => {
    let t = 0
    const q = new GossipQueues({ now: () => (t += 100) })
    const from = { peer: 'p', bytes: 10 }
    const rpc = [1, 2, 3].map(() => q.validate('stakes', false, () => Accept, from))
    let read = false
    const reader = q.room('p', false).then(() => (read = true))
    await Promise.all(rpc.slice(0, 2))
    for (let i = 0; i < 5; i++) await Promise.resolve()
    expect(read).toBe(false)
    await rpc[2]
    await reader
    expect(read).toBe(true)
  })

  it('two streams of one peer waiting for room are both woken (neither is left hanging)', async () => {
    let t = 0
    const q = new GossipQueues({ now: () => (t += 100), readAhead: { messages: 1, bytes: 1000 } })
    const job = q.validate('readings', false, () => Accept, { peer: 'p', bytes: 10 })
    let woken = 0
    const readers = [q.room('p'), q.room('p')].map((r) => r.then(() => woken++))
    await job
    await Promise.all(readers)
    expect(woken).toBe(2)
  })

  it('closed: what waits and what comes next is ignored', async () => {
    let t = 0
    const q = new GossipQueues({ now: () => (t += 100) })
    const waiting = q.validate('readings', false, () => Accept)
    q.close()
    expect(await waiting).toBe(Ignore)
    expect(await q.validate('candidates', false, () => Accept)).toBe(Ignore)
  })
})

describe('a real peer reading a gossip stream', () => {
  let tn: TestNet | undefined
  const cleanups: (() => Promise<void>)[] = []
  afterEach(async () => {
    for (const c of cleanups.splice(0)) await c().catch(() => {})
    await tn?.stopAll()
  })

  it('validates a block before the readings its sender put ahead of it in the same stream (it reads ahead)', async () => {
    const net = testNetwork({ slotMs: 250 })
    tn = new TestNet(net)
    const a = await tn.start(50)
    const b = await tn.start(50)
    // b delivers blocks to a (only a peer that does is read ahead).
    await b.submitReading(70)
    await waitFor(() => a.gossipStats().candidates.accepted > 0, 30_000, "a block of b's accepted at a")
    // 2,000 readings of 100 authors, 20 each: all valid and within quota, so each costs a signature check.
    const authors = await Promise.all(
      Array.from({ length: 100 }, async () => signerFromLibp2pKey(await generateKeyPair('Ed25519'))),
    )
    const now = Date.now()
    const total = 2000
    const readings = Array.from({ length: total }, (_, i) =>
      encodeReading(createReading(net, authors[i % 100], 60 + (i % 30), now - i)),
    )
    const validated = () => {
      const s = a.gossipStats().readings
      return s.accepted + s.ignored + [...s.rejected.values()].reduce((x, y) => x + y, 0)
    }
    const start = validated()
    // How many of them `a` had validated when the block after them was validated.
    const pubsub = a.network.libp2p.services.pubsub
    const candidates = topicName(net, 'candidates')
    const inner = pubsub.topicValidators.get(candidates)
    if (inner === undefined) throw new Error('no candidates validator')
    let before = -1
    pubsub.topicValidators.set(candidates, async (from: PeerId, msg: Message) => {
      const result = await inner(from, msg)
      if (msg.data.byteLength === 200) before = validated() - start
      return result
    })
    for (const r of readings) await b.network.publish('readings', r)
    // Not a valid block (Reject), but validated as one, in its queue's order.
    await b.network.publish('candidates', randomBytes(200))
    await waitFor(() => before >= 0 && validated() - start >= total, 30_000, 'the block and every reading validated')
    // One message at a time, the block came after all 2,000; read ahead, after at most the
    // readings not yet validated when it was read.
    expect(before).toBeLessThanOrEqual(total - (total - READ_AHEAD.messages) / 2)
  }, 60_000)
})
