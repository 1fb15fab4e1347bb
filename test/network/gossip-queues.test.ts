import { TopicValidatorResult } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { GossipQueues } from '../../src/network/gossip-queues.js'

const { Accept, Ignore } = TopicValidatorResult
const nextTurn = () => new Promise((r) => setImmediate(r))

describe('gossip validation queues', () => {
  it('while the event loop is busy, validates blocks first, then urgent readings, then the rest in arrival order', async () => {
    // A clock that says a turn is always used up: every message waits for the queue's turn.
    let t = 0
    const q = new GossipQueues({ now: () => (t += 100) })
    const order: string[] = []
    const job = (name: string) => () => {
      order.push(name)
      return Accept
    }
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
    const first = q.validate('readings', false, () => (order.push('a'), Accept))
    await first
    const second = q.validate('readings', false, () => (order.push('b'), Accept))
    expect(order).toEqual(['a', 'b'])
    await second
    now += 25
    const third = q.validate('readings', false, () => (order.push('c'), Accept))
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
    const job = (name: string) => () => {
      ran.push(name)
      return Accept
    }
    const u = q.validate('readings', true, job('urgent'))
    const a = q.validate('readings', false, job('a'))
    const b = q.validate('readings', false, job('b'))
    const c = q.validate('readings', false, job('c'))
    expect(await a).toBe(Ignore)
    expect(q.stats.dropped).toBe(1)
    expect(await Promise.all([u, b, c])).toEqual([Accept, Accept, Accept])
    expect(ran).toEqual(['urgent', 'b', 'c'])
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
