import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { createStake } from '../../src/core/records.js'
import type { SyncChain, SyncNetwork } from '../../src/sync/interfaces.js'
import { MAX_WANTED_PARENTS, UnknownParentSync } from '../../src/sync/unknown-parent.js'
import { silentLogger } from '../../src/util/logger.js'
import { foundingBlock } from '../helpers/blocks.js'
import { testNetwork, testSigners } from '../helpers/fixtures.js'
import { waitFor } from '../helpers/peers.js'

const net = testNetwork()
const newPeer = async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519'))

function fakes(opts: { connected: PeerId[]; serve: (peer: PeerId, hash: string) => Uint8Array | undefined }) {
  const asked: string[] = []
  const received: { hash: string; source?: string }[] = []
  const network: SyncNetwork = {
    connectedPeers: () => opts.connected,
    status: async () => {
      throw new Error('not used')
    },
    blocksByRange: async () => [],
    blocksByHash: async (peer, hashes) => {
      asked.push(peer.toString())
      const b = opts.serve(peer, toHex(hashes[0]))
      return b === undefined ? [] : [b]
    },
    refuse: () => {},
    penalize: () => {},
    dialKnown: () => {},
    hasBootstrap: () => false,
    isOnlyDefaultPeer: () => false,
  }
  const chain: SyncChain = {
    config: net,
    root: () => ({ height: 0, hash: net.id }),
    head: () => ({ height: 0, hash: net.id }),
    stake: 0,
    receiveBlock: (block, o) => {
      received.push({ hash: block.hashHex, source: o?.source })
      return 'accept'
    },
    finalHashAt: async () => undefined,
    holds: () => false,
    inspectForeign: () => 0,
  }
  return { network, chain, asked, received }
}

describe('unknown-parent fetch', () => {
  it('asks the peer that sent the child first, then connected peers, and imports what it gets', async () => {
    const [a] = await testSigners(1, 'up')
    const parent = foundingBlock(net, a, [createStake(net, a, 1, 1)])
    const [sender, other1, other2] = [await newPeer(), await newPeer(), await newPeer()]
    // Only other2 has it; the sender is asked first all the same.
    const f = fakes({
      connected: [other1, other2, sender],
      serve: (peer, hash) => (peer.equals(other2) && hash === parent.hashHex ? parent.bytes : undefined),
    })
    const sync = new UnknownParentSync({ chain: f.chain, network: f.network, log: silentLogger })
    sync.want(parent.hashHex, sender.toString())
    await waitFor(() => f.received.length === 1, 5000, 'the parent imported')
    expect(f.asked).toEqual([sender.toString(), other1.toString(), other2.toString()])
    expect(f.received[0]).toEqual({ hash: parent.hashHex, source: other2.toString() })
    expect(sync.size).toBe(0)
  })

  it('a flood of unknown parents keeps at most MAX_WANTED_PARENTS wanted', async () => {
    const f = fakes({ connected: [await newPeer()], serve: () => undefined })
    // Requests never answer, so every wanted parent stays wanted while the flood goes on.
    f.network.blocksByHash = () => new Promise(() => {})
    const sync = new UnknownParentSync({ chain: f.chain, network: f.network, log: silentLogger })
    for (let i = 0; i < 150_000; i++) sync.want(i.toString(16).padStart(64, '0'), 'not-a-peer-id')
    expect(sync.size).toBe(MAX_WANTED_PARENTS)
    sync.close()
    expect(sync.size).toBe(0)
  })
})
