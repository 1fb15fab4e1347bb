import { afterEach, describe, expect, it, vi } from 'vitest'
import { slotAt, slotStart } from '../../src/core/params.js'
import { buildSignedCandidate, votesPending } from '../../src/core/proposer.js'
import type { Block } from '../../src/core/records.js'
import { type SlotChain, SlotLoop, VOTE_WAIT_SLOTS } from '../../src/node/slot-loop.js'
import { type Logger, silentLogger } from '../../src/util/logger.js'
import { LockstepChain } from '../helpers/chain-builder.js'
import { testNetwork, testSigners, timeOf } from '../helpers/fixtures.js'

const net = testNetwork()
const SLOT = 40

/**
 * One slot of the loop on a virtual clock (sleep advances it): when did it build, given when the
 * last slot's votes are in (`votesAt`, ms into the slot; undefined: never)?
 */
async function buildTime(votesAt: number | undefined, rank = 0): Promise<{ builtAt: number; published: string[] }> {
  const start = slotStart(net.params, SLOT)
  let now = start
  let builtAt = Number.NaN
  const published: string[] = []
  const chain: SlotChain = {
    stake: 10,
    proposalRank: () => rank,
    votesPending: () => votesAt === undefined || now - start < votesAt,
    onSlot: async (_slot, publish) => {
      builtAt = now - start
      publish({ bytes: new Uint8Array([1]) } as Block)
      return undefined
    },
    unconfirmed: () => ({ readings: [], stakes: [] }),
  }
  const loop = new SlotLoop({
    config: net,
    chain,
    now: () => now,
    sleep: async (ms) => {
      now += ms
    },
    publish: (topic) => {
      published.push(topic)
    },
    joined: () => true,
    regossipSlots: 1000,
    log: silentLogger,
  })
  await loop.tick(SLOT)
  return { builtAt, published }
}

describe('slot loop', () => {
  it("builds at once when the last slot's votes are in, waits for them while they arrive, and not past a quarter slot", async () => {
    expect((await buildTime(0)).builtAt).toBe(0)
    // The votes come in 120 ms into the slot: it builds then (polling every slotMs / 100).
    expect((await buildTime(120)).builtAt).toBe(120)
    // Never: at the deadline, with the votes it has.
    const deadline = net.params.slotMs * VOTE_WAIT_SLOTS
    expect((await buildTime(undefined)).builtAt).toBe(deadline)
    // The stagger comes after the wait: the likely winner still goes first.
    expect((await buildTime(120, 3)).builtAt).toBe(120 + 3 * (net.params.slotMs / 100))
    // What onSlot hands to publish goes out as a candidate.
    expect((await buildTime(0)).published).toEqual(['candidates'])
  })

  it('votesPending: a candidate of the last slot is in, but the 2/3 that justify its target are not', async () => {
    const signers = await testSigners(3, 'wait')
    const lock = new LockstepChain(net, signers, [50, 30, 20])
    // Every stake counted and the chain finalizing, as on a running network.
    for (let i = 0; i < 30; i++) {
      lock.addReading(i % 3, 60 + i)
      lock.step()
    }
    expect(lock.chain.root.slot).toBeGreaterThan(20)
    const slot = lock.slot
    lock.addReading(0, 99)
    const [a, b, c] = signers.map((s) => buildSignedCandidate(lock.chain, lock.mempool, s, slot) as Block)
    const now = timeOf(net, slot)
    expect(votesPending(lock.chain, slot + 1)).toBe(false) // no candidate of `slot` yet: nothing to wait for
    lock.chain.import(c, now)
    expect(votesPending(lock.chain, slot + 1)).toBe(true) // 20 of 100
    lock.chain.import(b, now)
    expect(votesPending(lock.chain, slot + 1)).toBe(true) // 50 of 100
    lock.chain.import(a, now)
    expect(votesPending(lock.chain, slot + 1)).toBe(false) // 100: (its parent, slot) is justified
  })

  describe('on its clock', () => {
    afterEach(() => {
      vi.useRealTimers()
    })

    /** A loop on fake timers (the clock half a slot into slot 1000) around `onSlot`. */
    function clockLoop(onSlot: SlotChain['onSlot'], log: Logger = silentLogger): SlotLoop {
      vi.useFakeTimers()
      vi.setSystemTime(slotStart(net.params, 1000) + net.params.slotMs / 2)
      return new SlotLoop({
        config: net,
        chain: { stake: 10, proposalRank: () => 0, onSlot, unconfirmed: () => ({ readings: [], stakes: [] }) },
        now: () => Date.now(),
        sleep: (ms) => new Promise((r) => setTimeout(r, ms)),
        publish: () => {},
        joined: () => true,
        regossipSlots: 1000,
        log,
      })
    }

    it('a tick that runs past the next slot start does not skip that slot: it starts at once, late', async () => {
      const p = net.params
      const ticked: { slot: number; at: number }[] = []
      const logged: string[] = []
      const loop = clockLoop(
        async (slot) => {
          ticked.push({ slot, at: Date.now() })
          // The first tick is held for 1.5 slots (an import behind a busy event loop).
          if (ticked.length === 1) await new Promise((r) => setTimeout(r, p.slotMs * 1.5))
          return undefined
        },
        (level, msg) => logged.push(`${level} ${msg}`),
      )
      loop.start()
      await vi.advanceTimersByTimeAsync(p.slotMs * 5)
      await loop.stop()
      const slots = ticked.map((t) => t.slot)
      // Every slot from the first, none skipped.
      expect(slots).toEqual(Array.from({ length: slots.length }, (_, i) => 1001 + i))
      expect(slots.length).toBeGreaterThanOrEqual(4)
      // The second tick ran as soon as the first was done: 1.5 slots after the first started (and
      // a timer's millisecond or two).
      expect(ticked[1].at - ticked[0].at).toBeGreaterThanOrEqual(p.slotMs * 1.5)
      expect(ticked[1].at - ticked[0].at).toBeLessThan(p.slotMs * 1.5 + 10)
      expect(slotAt(p, ticked[1].at)).toBe(1002)
      // After that, back on the slot starts.
      expect(ticked[2].at).toBe(slotStart(p, 1003))
      // Half a slot late: the user is told.
      expect(logged).toEqual([expect.stringMatching(/^warn slot 1002 started 50\d ms late: this machine is too busy/)])
    })

    it('stop resolves once the tick in progress is done, and no tick follows', async () => {
      const p = net.params
      const done: number[] = []
      const loop = clockLoop(async (slot) => {
        await new Promise((r) => setTimeout(r, p.slotMs / 4))
        done.push(slot)
        return undefined
      })
      loop.start()
      // Into slot 1001's tick, before its onSlot is done.
      await vi.advanceTimersByTimeAsync(p.slotMs / 2 + 10)
      let stopped = false
      const stopping = loop.stop().then(() => {
        stopped = true
      })
      await vi.advanceTimersByTimeAsync(10)
      expect(stopped).toBe(false)
      await vi.advanceTimersByTimeAsync(p.slotMs * 3)
      await stopping
      expect(done).toEqual([1001])
    })
  })
})
