import { describe, expect, it } from 'vitest'
import { createBlock, createStake } from '../../src/core/records.js'
import { ChainService } from '../../src/node/chain-service.js'
import { Store } from '../../src/storage/store.js'
import { testNetwork, testSigners, timeOf } from '../helpers/fixtures.js'

const net = testNetwork()

describe('chain service', () => {
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
    await store.close()
  })
})
