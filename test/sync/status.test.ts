import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import type { Block } from '../../src/core/records.js'
import type { RangeSync } from '../../src/sync/range-sync.js'
import { StatusSync } from '../../src/sync/status.js'
import { silentLogger } from '../../src/util/logger.js'
import { createBlock } from '../helpers/blocks.js'
import { testNetwork, testSigner } from '../helpers/fixtures.js'

const net = testNetwork()

describe('status exchange with a peer whose finalized chain conflicts with ours', () => {
  it('fetches its blocks around the conflict, checks them for equivocators, then refuses it saying so', async () => {
    const peer = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
    const signer = await testSigner('status')
    const theirs = Array.from({ length: 3 }, (_, i) =>
      createBlock(net, signer, { height: i + 1, slot: i + 1, parent: net.id, readings: [], stakes: [] }),
    )
    const inspected: Block[] = []
    const refused: string[] = []
    const asked: [number, number][] = []
    const ourRoot = { height: 40, hash: new Uint8Array(32).fill(1) }
    const sync = new StatusSync({
      chain: {
        config: net,
        root: () => ourRoot,
        head: () => ourRoot,
        stake: 10,
        receiveBlock: () => 'ignore',
        holds: () => true,
        finalHashAt: async () => '01'.repeat(32),
        inspectForeign: (blocks) => {
          inspected.push(...blocks)
          return 1
        },
      },
      network: {
        connectedPeers: () => [peer],
        status: async () => ({
          networkId: net.id,
          headHash: new Uint8Array(32).fill(2),
          headHeight: 40,
          finalizedHash: new Uint8Array(32).fill(2),
          finalizedHeight: 40,
          peers: [],
          stake: 10,
        }),
        blocksByRange: async (_p, from, count) => {
          asked.push([from, count])
          return theirs.map((b) => b.bytes)
        },
        blocksByHash: async () => [],
        refuse: (_p, reason) => refused.push(reason),
        penalize: () => {},
        dialKnown: () => {},
        hasBootstrap: () => true,
        isOnlyDefaultPeer: () => false,
      },
      rangeSync: { isSyncingFrom: () => false } as unknown as RangeSync,
      self: 'self',
      startedSlot: 0,
      now: () => Date.now(),
      log: silentLogger,
      peerAddrs: () => [],
    })
    await sync.exchange(peer)
    expect(asked).toEqual([[8, 64]])
    expect(inspected.map((b) => b.hashHex)).toEqual(theirs.map((b) => b.hashHex))
    expect(refused).toHaveLength(1)
    expect(refused[0]).toMatch(/conflicts with ours \(1 validator\(s\) signed both chains: evidence taken\)/)
  })
})
