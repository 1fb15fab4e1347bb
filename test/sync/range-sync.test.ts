import type { PeerId } from '@libp2p/interface'
import { describe, expect, it } from 'vitest'
import { type Block, createStake } from '../../src/core/records.js'
import type { Status } from '../../src/network/reqresp.js'
import type { SyncChain, SyncNetwork } from '../../src/sync/interfaces.js'
import { brokenResponse, RangeSync } from '../../src/sync/range-sync.js'
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
  /** A chain of `n` blocks on the genesis hash; a fake node holding the first `held` of them. */
  async function setup(n: number, held: number) {
    const [a] = await testSigners(1, 'range-sync')
    const blocks: Block[] = []
    for (let h = 1; h <= n; h++)
      blocks.push(
        createBlock(net, a, {
          height: h,
          slot: h,
          parent: h === 1 ? net.id : (blocks.at(-1) as Block).hash,
          readings: [],
          stakes: [],
        }),
      )
    const holding = new Set(blocks.slice(0, held).map((b) => b.hashHex))
    const chain = {
      config: net,
      stake: 0,
      root: () => ({ height: 0, hash: net.id }),
      head: () => ({ height: held, hash: held === 0 ? net.id : blocks[held - 1].hash }),
      receiveBlock: (b: Block) => {
        holding.add(b.hashHex)
        return 'accept' as const
      },
      holds: (b: { hashHex: string; height: number }) => b.height <= 0 || holding.has(b.hashHex),
      finalHashAt: async () => undefined,
      inspectForeign: () => 0,
    } satisfies SyncChain
    const network = {
      blocksByRange: async (_peer: PeerId, from: number, count: number) =>
        blocks.slice(from - 1, from - 1 + count).map((b) => b.bytes),
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
    return { sync, status, holding, pooled }
  }
  const peer = { toString: () => 'peer' } as unknown as PeerId

  it('a peer two blocks ahead: the range from our final block holds 98 blocks we have; no threads for them', async () => {
    const { sync, status, holding, pooled } = await setup(100, 98)
    expect(await sync.syncFrom(peer, status)).toBe(true)
    expect(holding.size).toBe(100)
    // Before: every 64-block batch went to the worker threads (64 + 36 checks), held or not.
    expect(pooled).toEqual([])
  })

  it('far behind: the blocks we lack are checked on the threads, a batch at a time', async () => {
    const { sync, status, holding, pooled } = await setup(100, 0)
    expect(await sync.syncFrom(peer, status)).toBe(true)
    expect(holding.size).toBe(100)
    expect(pooled).toEqual([64, 36])
  })
})
