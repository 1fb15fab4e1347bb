import { afterEach, describe, expect, it } from 'vitest'
import { testNetwork } from '../helpers/fixtures.js'
import { TestNet, waitFor } from '../helpers/peers.js'

const net = testNetwork({ slotMs: 250, stakeTtlSlots: 400 })
let tn: TestNet

afterEach(async () => {
  await tn.stopAll()
})

describe('two real peers', () => {
  it('connect, gossip a reading and agree on the block that holds it', async () => {
    tn = new TestNet(net)
    const a = await tn.start(100)
    const b = await tn.start(50)
    await waitFor(
      () => a.p2p.connectedPeers().length === 1 && b.p2p.connectedPeers().length === 1,
      10_000,
      'connection',
    )
    await waitFor(
      () => a.p2p.gossip.meshPeers('readings') > 0 && b.p2p.gossip.meshPeers('readings') > 0,
      10_000,
      'mesh',
    )
    const r = await b.submitReading(77)
    await waitFor(
      () => a.svc.chain.finalReadings.has(r.idHex) && b.svc.chain.finalReadings.has(r.idHex),
      15_000,
      'reading final on both',
    )
    expect(a.svc.chain.root.height).toBeGreaterThan(0)
    await waitFor(() => a.svc.chain.head.hashHex === b.svc.chain.head.hashHex, 5_000, 'equal heads')
  })
})
