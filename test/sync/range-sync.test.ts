import type { PeerId } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { type Block, createStake } from '../../src/core/records.js'
import type { Status } from '../../src/network/reqresp.js'
import type { SyncChain, SyncNetwork } from '../../src/sync/interfaces.js'
import { brokenResponse, NEAR_HEAD_MARGIN, RangeSync } from '../../src/sync/range-sync.js'
import type { VerifyPool } from '../../src/sync/verify-pool.js'
import { createBlock } from '../helpers/blocks.js'
import { testNetwork, testSigners } from '../helpers/fixtures.js'

const net = testNetwork()

describe('range answers', () => {
  it('consecutive heights, each the child of the one before: fine; a gap, a wrong start or a broken link: named', async () => {
    const [a] = await testSigners(1, 'range')
    const chain = [
      createBlock(net, a, {
        height: 5,
        slot: 5,
        parent: new Uint8Array(32),
        readings: [],
        stakes: [createStake(net, a, 1, 1)],
      }),
    ]
    for (let h = 6; h <= 9; h++)
      chain.push(
        createBlock(net, a, {
          height: h,
          slot: h,
          parent: (chain.at(-1) as (typeof chain)[0]).hash,
          readings: [],
          stakes: [],
        }),
      )
    expect(brokenResponse(chain, 5)).toBeUndefined()
    expect(brokenResponse([], 5)).toBeUndefined()
    expect(brokenResponse(chain, 4)).toMatch(/height 5 where 4 was asked for/)
    expect(brokenResponse([chain[0], chain[1], chain[3]], 5)).toMatch(/height 8 where 7/)
    const stranger = createBlock(net, a, {
      height: 7,
      slot: 7,
      parent: new Uint8Array(32).fill(9),
      readings: [],
      stakes: [],
    })
    expect(brokenResponse([chain[0], chain[1], stranger], 5)).toMatch(/block 7 is not the child of block 6/)
  })
})

describe('range sync', () => {
  /**
   * The peer's chain of `n` blocks on the genesis hash, and a fake node holding `held` blocks: the
   * peer's below `forkAt`, its own branch (other slots) from there. Nothing is final.
   */
  async function setup(n: number, held: number, forkAt = held + 1) {
    const [a] = await testSigners(1, 'range-sync')
    const build = (upTo: number, from: Block[], slotOffset: number) => {
      const out = [...from]
      for (let h = out.length + 1; h <= upTo; h++)
        out.push(
          createBlock(net, a, {
            height: h,
            slot: h + slotOffset,
            parent: h === 1 ? net.id : (out.at(-1) as Block).hash,
            readings: [],
            stakes: [],
          }),
        )
      return out
    }
    const blocks = build(n, [], 0)
    const ours = build(held, blocks.slice(0, Math.min(held, forkAt - 1)), 500)
    const holding = new Set(ours.map((b) => b.hashHex))
    const chain = {
      config: net,
      stake: 0,
      root: () => ({ height: 0, hash: net.id }),
      head: () => ({ height: held, hash: held === 0 ? net.id : ours[held - 1].hash }),
      receiveBlock: (b: Block) => {
        holding.add(b.hashHex)
        return 'accept' as const
      },
      holds: (b: { hashHex: string; height: number }) => b.height <= 0 || holding.has(b.hashHex),
      finalHashAt: async () => undefined,
      inspectForeign: () => 0,
    } satisfies SyncChain
    const asked: number[] = []
    const network = {
      blocksByRange: async (_peer: PeerId, from: number, count: number) => {
        asked.push(from)
        return blocks.slice(from - 1, from - 1 + count).map((b) => b.bytes)
      },
      penalize: () => {},
      refuse: () => {},
    } as unknown as SyncNetwork
    const pooled: number[] = []
    const pool = {
      verifyAndRemember: async (checks: readonly unknown[]) => {
        pooled.push(checks.length)
      },
      close: async () => {},
    } as unknown as VerifyPool
    const sync = new RangeSync({ chain, network, log: () => {}, verifyPool: pool })
    const status = { headHeight: n, finalizedHeight: 0 } as Status
    const holdsAll = () => blocks.every((b) => holding.has(b.hashHex))
    return { sync, status, asked, pooled, holdsAll }
  }
  const peer = { toString: () => 'peer' } as unknown as PeerId

  it('a peer two blocks ahead while finality stalls 98 blocks back: the sync starts near our head, no threads', async () => {
    const { sync, status, asked, pooled, holdsAll } = await setup(100, 98)
    expect(await sync.syncFrom(peer, status)).toBe(true)
    expect(holdsAll()).toBe(true)
    // Before: from our final block (1, 65), and both batches to the worker threads (64 + 36).
    expect(asked).toEqual([98 - NEAR_HEAD_MARGIN])
    expect(pooled).toEqual([])
  })

  it('far behind: from our final block, the blocks we lack checked on the threads a batch at a time', async () => {
    const { sync, status, asked, pooled, holdsAll } = await setup(100, 0)
    expect(await sync.syncFrom(peer, status)).toBe(true)
    expect(holdsAll()).toBe(true)
    expect(asked).toEqual([1, 65])
    expect(pooled).toEqual([64, 36])
  })

  it('its chain forks below where the sync starts: from our final block again, and its branch is imported', async () => {
    const { sync, status, asked, holdsAll } = await setup(100, 98, 50)
    expect(await sync.syncFrom(peer, status)).toBe(true)
    expect(asked.slice(0, 2)).toEqual([98 - NEAR_HEAD_MARGIN, 1])
    expect(holdsAll()).toBe(true)
  })
})
