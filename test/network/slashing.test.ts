import { afterEach, describe, expect, it } from 'vitest'
import { attachOutput } from '../../src/cli/output.js'
import { toHex } from '../../src/core/bytes.js'
import { addressOf, signerFromLibp2pKey } from '../../src/core/crypto.js'
import { slotAt } from '../../src/core/params.js'
import { createReading, decodeBlock } from '../../src/core/records.js'
import type { Peer } from '../../src/node/peer.js'
import { loadOrCreateIdentity } from '../../src/storage/identity.js'
import { createBlock } from '../helpers/blocks.js'
import { testNetwork } from '../helpers/fixtures.js'
import { describePeers, TestNet, waitFor } from '../helpers/peers.js'

const net = testNetwork({ slotMs: 250, stakeTtlSlots: 400 })
let tn: TestNet | undefined

afterEach(async () => {
  await tn?.stopAll()
  tn = undefined
})

describe('equivocation over real TCP', () => {
  it('a 20% validator that signs two blocks in a slot is convicted and slashed on every peer; no conflicting finality', async () => {
    tn = new TestNet(net)
    // The second block goes to `a` only: b and c drop it at gossip, so they learn of the
    // equivocation only from the evidence a makes and gossips.
    const conflicting = new Set<string>()
    let dropped = 0
    const dropConflicting = (topic: string, handler: (from: never, data: Uint8Array) => unknown) =>
      topic === 'candidates'
        ? (from: never, data: Uint8Array) => {
            if (!conflicting.has(decodeBlock(net, data).hashHex)) return handler(from, data)
            dropped++
            return 'ignore'
          }
        : handler
    const a = await tn.start(30)
    const b = await tn.start(30, { wrapGossip: dropConflicting as never })
    const c = await tn.start(20, { wrapGossip: dropConflicting as never })
    const e = await tn.start(20, { persistent: true })
    const honest = [a, b, c]
    const eKey = toHex(signerFromLibp2pKey(await loadOrCreateIdentity(e.dataDir as string)).publicKey)
    const eSigner = signerFromLibp2pKey(await loadOrCreateIdentity(e.dataDir as string))
    expect(e.publicKeyHex).toBe(eKey)
    // What b's user sees: the --json lines and the text lines.
    const jsonLines: Record<string, unknown>[] = []
    const textLines: string[] = []
    attachOutput(b, 'json', (l) => jsonLines.push(JSON.parse(l)))
    attachOutput(b, 'text', (l) => textLines.push(l))
    const evidenceOn = new Map<Peer, number>()
    for (const p of honest) p.events.on('evidence', () => evidenceOn.set(p, slotAt(net.params, Date.now())))
    // Traffic, so every validator proposes every slot.
    const timer = setInterval(() => void a.submitReading(70).catch(() => {}), 300)
    try {
      await waitFor(
        () => honest.every((p) => p.finalized().height >= 3 && (p.finalized().state.stakes.get(eKey)?.stake ?? 0) > 0),
        30_000,
        'finality, with e a validator in the final state',
      )
      // e's next own candidate gets a twin: same slot, same parent, same source and reveal, other content.
      let equivocatedAt = -1
      await new Promise<void>((resolve) => {
        e.events.on('candidate', ({ node, local }) => {
          if (!local || equivocatedAt >= 0 || node.block === undefined) return
          const orig = node.block
          const twin = createBlock(net, eSigner, {
            height: orig.height,
            slot: orig.slot,
            parent: orig.parent,
            source: orig.source,
            reveal: orig.reveal,
            votes: orig.votes,
            stakes: orig.stakes,
            readings: [createReading(net, eSigner, 99, Date.now() - 100)],
          })
          conflicting.add(twin.hashHex)
          equivocatedAt = orig.slot
          void e.network.publish('candidates', twin.bytes)
          resolve()
        })
      })
      // Evidence on every honest peer, then a final block that slashes e on every peer.
      await waitFor(() => honest.every((p) => evidenceOn.has(p)), 20_000, 'evidence on every honest peer').catch(
        (err) => {
          console.log(describePeers([...honest, e]))
          throw err
        },
      )
      await waitFor(
        () => honest.every((p) => p.finalized().state.stakes.get(eKey)?.slashed === true),
        30_000,
        'e slashed in the final state of every honest peer',
      )
      const slashedAfter = slotAt(net.params, Date.now()) - equivocatedAt
      console.log(
        `equivocation at slot ${equivocatedAt}: evidence after ${[...evidenceOn.values()].map((s) => s - equivocatedAt).join('/')} slots, slashed in a final block on all within ${slashedAfter} slots`,
      )
      expect(slashedAfter).toBeLessThan(20)
      expect(dropped).toBeGreaterThan(0) // b and c saw the twin only as evidence
      const eAddress = addressOf(Buffer.from(eKey, 'hex'))
      await waitFor(() => jsonLines.some((j) => j.event === 'slashed'), 10_000, 'a slashed event on b')
      expect(jsonLines.find((j) => j.event === 'evidence')).toMatchObject({ validator: eAddress, offence: 'double' })
      expect(jsonLines.find((j) => j.event === 'slashed')).toMatchObject({ validator: eAddress })
      expect(textLines.some((l) => l.startsWith('evidence: validator') && l.includes('signed two blocks'))).toBe(true)
      expect(textLines.some((l) => l.startsWith('slashed: validator'))).toBe(true)
      await waitFor(
        () => b.validators().some((v) => v.address === eAddress && v.slashed && v.stake === 0),
        10_000,
        'the Validators view shows e slashed',
      )
      // One final chain: at the lowest finalized height, every honest peer holds the same block.
      const h = Math.min(...honest.map((p) => p.finalized().height))
      const hashes = await Promise.all(honest.map(async (p) => (await p.canonicalBlocks(h, 1))[0]?.hash))
      expect(new Set(hashes).size).toBe(1)
      // The honest three (80%) keep finalizing without e.
      const before = Math.max(...honest.map((p) => p.finalized().height))
      await waitFor(() => honest.every((p) => p.finalized().height > before + 2), 30_000, 'finality goes on')
    } finally {
      clearInterval(timer)
    }
  }, 150_000)
})
