import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { afterEach, describe, expect, it } from 'vitest'
import { addressOf } from '../../src/core/crypto.js'
import { decodeBlock } from '../../src/core/records.js'
import type { Peer } from '../../src/node/peer.js'
import { Store } from '../../src/storage/store.js'
import { LockstepChain } from '../helpers/chain-builder.js'
import { prng, testNetwork, testSigners } from '../helpers/fixtures.js'
import { TestNet, waitFinalOnAll, waitFor } from '../helpers/peers.js'

const net = testNetwork({ slotMs: 250, stakeTtlSlots: 400 })
let tn: TestNet | undefined
const dirs: string[] = []

afterEach(async () => {
  await tn?.stopAll()
  tn = undefined
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
})

async function finalChain(peer: Peer) {
  await peer.flush()
  const frames = await peer.finalBlockBytes(1, peer.finalized().height)
  return frames.map((b) => decodeBlock(peer.config, b))
}

const allConnected = (peers: Peer[]) => peers.every((p) => p.connectedPeers().length >= peers.length - 1)

describe('real peers over TCP on 127.0.0.1', () => {
  it('five peers (10/20/30/40/100), readings at random peers for 60 slots: one final chain, every reading once', async () => {
    tn = new TestNet(net)
    const stakes = [10, 20, 30, 40, 100]
    const peers: Peer[] = []
    for (const s of stakes) peers.push(await tn.start(s))
    await waitFor(() => allConnected(peers), 60_000, 'full mesh of connections (pubsub peer discovery)').catch(
      (err) => {
        console.log(peers.map((p) => p.connectedPeers().length))
        throw err
      },
    )
    await waitFor(() => peers.every((p) => p.network.gossip.meshPeers('readings') > 0), 60_000, 'gossip mesh')
    const rand = prng(5)
    const submitted: string[] = []
    const slotMs = net.params.slotMs
    for (let i = 0; i < 60; i++) {
      const peer = peers[Math.floor(rand() * peers.length)]
      submitted.push((await peer.submitReading(50 + Math.floor(rand() * 100))).idHex)
      await new Promise((r) => setTimeout(r, slotMs))
    }
    // Every reading final everywhere, then heads equal (the network goes quiet).
    await waitFinalOnAll(peers, submitted, 60_000, 'all readings final on all peers')
    await waitFor(() => new Set(peers.map((p) => p.chain.head.hashHex)).size === 1, 2 * slotMs + 2000, 'equal heads')
    const chains = await Promise.all(peers.map(finalChain))
    const longest = chains.reduce((a, b) => (b.length > a.length ? b : a))
    for (const c of chains) for (const [h, b] of c.entries()) expect(b.hashHex).toBe(longest[h].hashHex)
    const counts = new Map<string, number>()
    for (const b of longest) for (const r of b.readings) counts.set(r.idHex, (counts.get(r.idHex) ?? 0) + 1)
    for (const id of submitted) expect(counts.get(id)).toBe(1)
    for (const p of peers) expect(p.gossipStats().candidates.rejected.size).toBe(0)
  }, 180_000)

  it('a late joiner after 500 blocks catches up by range sync, then follows the head', async () => {
    // A data dir that already holds a 500-block chain (built offline by three old validators).
    const dir = await mkdtemp(join(tmpdir(), 'pos-peer-late-'))
    dirs.push(dir)
    const store = new Store(net, { path: join(dir, 'chain') })
    await store.open()
    const lock = new LockstepChain(net, await testSigners(3, 'old'), [10, 30, 60])
    while (lock.chain.head.height < 500) {
      lock.addReading(lock.slot % 3, 60 + (lock.slot % 60))
      for (const r of lock.step()) await store.saveImport(r)
    }
    await store.close()
    tn = new TestNet(net)
    const a = await tn.start(100, { dataDir: dir })
    expect(a.chain.head.height).toBeGreaterThanOrEqual(500)
    const b = await tn.start(0)
    const t0 = Date.now()
    await waitFor(() => b.chain.root.height >= 498, 60_000, 'late joiner synced the final chain')
    const ms = Date.now() - t0
    expect(b.chain.root.height).toBeGreaterThanOrEqual(498)
    // Then it follows: a new reading on A reaches B's final chain through gossip.
    const r = await a.submitReading(99)
    await waitFor(() => b.chain.finalReadings.has(r.idHex), 20_000, 'new reading final on the joiner')
    console.log(`late joiner: ${b.chain.root.height} blocks in ${ms} ms`)
  }, 180_000)

  it('the first (bootstrap) peer leaves: the others keep producing blocks and agreeing', async () => {
    tn = new TestNet(net)
    const peers: Peer[] = []
    for (const s of [40, 20, 20, 20]) peers.push(await tn.start(s))
    await waitFor(() => allConnected(peers), 60_000, 'full mesh of connections')
    const first = peers[0]
    const r0 = await peers[1].submitReading(70)
    await waitFinalOnAll(peers, [r0.idHex], 60_000, 'first reading final')
    await first.stop({ graceful: true })
    const rest = peers.slice(1)
    const heightBefore = rest[0].chain.root.height
    const ids: string[] = []
    for (let i = 0; i < 5; i++) ids.push((await rest[i % 3].submitReading(80 + i)).idHex)
    await waitFinalOnAll(rest, ids, 60_000, 'readings final without the first peer', peers)
    expect(rest[0].chain.root.height).toBeGreaterThan(heightBefore)
    await waitFor(() => new Set(rest.map((p) => p.chain.head.hashHex)).size === 1, 5_000, 'equal heads')
  }, 180_000)

  it('fresh peers that all bootstrap somewhere (none starts alone) begin one network by themselves', async () => {
    tn = new TestNet(net)
    // The first peer points at an address where nobody listens, so no peer may start alone.
    const peers: Peer[] = [await tn.start(10, { bootstrap: ['127.0.0.1:1'] })]
    for (const s of [20, 30]) peers.push(await tn.start(s))
    await waitFor(() => allConnected(peers), 30_000, 'connections')
    const r = await peers[2].submitReading(77)
    await waitFinalOnAll(peers, [r.idHex], 60_000, 'a reading final on all three')
    const chains = await Promise.all(peers.map(finalChain))
    const shortest = Math.min(...chains.map((c) => c.length))
    for (const c of chains) expect(c[shortest - 1].hashHex).toBe(chains[0][shortest - 1].hashHex)
    // The lowest validator id began it.
    const lowest = [...peers].sort((a, b) => (a.peerId < b.peerId ? -1 : 1))[0]
    expect(addressOf(chains[0][0].proposer)).toBe(lowest.peerId)
  }, 120_000)

  it('a connection whose gossip stream broke is closed and redialled, and gossip flows again', async () => {
    tn = new TestNet(net)
    const a = await tn.start(10)
    const b = await tn.start(0)
    await waitFor(() => a.network.gossip.gossipWorks(b.network.peerId), 30_000, 'gossip between a and b')
    // Break a's outbound gossip stream to b while the connection stays up (as a reset in a cut does).
    const internals = a.network.libp2p.services.pubsub as unknown as {
      streamsOutbound: Map<string, { rawStream: { abort(err: Error): void } }>
    }
    internals.streamsOutbound.get(b.peerId)?.rawStream.abort(new Error('test: stream broken'))
    await waitFor(() => !a.network.gossip.gossipWorks(b.network.peerId), 5_000, 'the check sees it broken')
    const r = await a.submitReading(88)
    await waitFor(() => b.chain.finalReadings.has(r.idHex), 60_000, 'the reading reaches b after the redial')
  }, 120_000)

  it('a reading typed while no peer listens reaches the validators once one does (sent again, not only "seen")', async () => {
    tn = new TestNet(net)
    const v = await tn.start(10)
    await waitFor(() => v.head().height >= 2, 30_000, 'the validator proposing')
    // A user without stake, started alone (its bootstrap address answers nobody): its reading is
    // published to no one, which gossipsub still records as seen for two minutes.
    const u = await tn.start(0, { bootstrap: ['127.0.0.1:1'] })
    const r = await u.submitReading(71)
    expect(u.connectedPeers()).toHaveLength(0)
    await u.network.libp2p.dial(multiaddr(v.listenAddrs()[0]))
    // Re-gossip (every 4 slots: 1 s here) sends it again; before, nothing did for two minutes.
    await waitFinalOnAll([v, u], [r.idHex], 20_000, 'the reading final on both')
  }, 60_000)

  it('a peer that gets no candidates by gossip still catches up (periodic status + range sync)', async () => {
    tn = new TestNet(net)
    const a = await tn.start(10)
    // b drops every candidate (gossip stays healthy, nothing is imported from it).
    let candidatesDropped = 0
    const b = await tn.start(0, {
      wrapGossip: (topic, handler) =>
        topic === 'candidates'
          ? () => {
              candidatesDropped++
              return 'ignore'
            }
          : handler,
    })
    await waitFor(() => a.network.gossip.gossipWorks(b.network.peerId), 30_000, 'gossip between a and b')
    const r = await a.submitReading(66)
    await waitFor(() => a.chain.finalReadings.has(r.idHex), 20_000, 'final on a')
    const target = a.chain.root.height
    await waitFor(() => b.chain.root.height >= target, 30_000, "b reached a's finalized height")
    expect(b.chain.finalReadings.has(r.idHex)).toBe(true)
    expect(candidatesDropped).toBeGreaterThan(0)
  }, 120_000)

  it('a peer on another network is refused at status and nothing of it is imported', async () => {
    tn = new TestNet(net)
    const a = await tn.start(100)
    const refused: string[] = []
    a.events.on('peer:refused', ({ reason }) => refused.push(reason))
    const otherNet = testNetwork({ slotMs: 300, stakeTtlSlots: 400 })
    const other = new TestNet(otherNet)
    try {
      const x = await other.start(100, { bootstrap: [a.listenAddrs()[0]] })
      await x.submitReading(75)
      await waitFor(() => refused.length > 0, 15_000, 'refusal')
      expect(refused[0]).toMatch(/network/)
      await waitFor(() => !a.connectedPeers().includes(x.peerId), 10_000, 'the other network disconnected')
      const xKey = Buffer.from(x.publicKeyHex, 'hex')
      for (const n of a.chain.chainTo()) expect(n.block?.proposer).not.toEqual(xKey)
      expect(a.pools().mempool).toBeLessThanOrEqual(1)
    } finally {
      await other.stopAll()
    }
  }, 60_000)

  it('the default port 9090 held by another network: a new peer (no --port, no --bootstrap) begins its own network and says so', async () => {
    const otherNet = testNetwork({ slotMs: 300, stakeTtlSlots: 400 })
    const other = new TestNet(otherNet)
    tn = new TestNet(net)
    try {
      // The other network's peer holds "the default port" (9090 for `pos-peer`; here a free port
      // stands in for it, so the test does not depend on this machine's 9090).
      const x = await other.start(100, { port: 0 })
      const defaultPort = Number(/\/tcp\/(\d+)\//.exec(x.listenAddrs()[0])?.[1])
      const warnings: string[] = []
      const b = await tn.start(10, { port: undefined, bootstrap: [], defaultPort })
      b.events.on('warning', ({ message }) => warnings.push(message))
      expect(b.listenAddrs()[0]).not.toContain(`/tcp/${defaultPort}/`)
      await waitFor(() => b.head().height >= 3, 30_000, 'the new network making blocks')
      expect(warnings.join('\n')).toMatch(
        /default port \d+ is on another network .*begins network .* by itself on \/ip4\/127\.0\.0\.1\/tcp\/\d+/,
      )
    } finally {
      await other.stopAll()
    }
  }, 60_000)
})
