// The stake flood of issue 10 against real pos-peer processes: three honest validators (40/30/30)
// on the open devnet, and a stranger that gossips stake announcements of 1 from FLOOD_KEYS fresh
// keys (60,000 by default) into one of them. The devnet cannot refuse self-declared stake: the
// flood fills the stake table (at most maxValidators entries), is let in to count slowly
// (activation delay, churn limit), outweighs the honest 100 and stalls finality; it never votes,
// so the inactivity leak ejects it after `inactivityBlocks` stalled blocks and finality comes
// back. Asserted: every peer's RSS stays under 250 MB throughout (387 MB on the peer receiving
// the flood before the table had a bound), and a reading typed during the stall becomes final on
// every peer once finality is back. `npm run bench:flood:net` runs it alone for docs/PERFORMANCE.md.
import { join } from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { utf8 } from '../../src/core/bytes.js'
import { sha256, signerFromLibp2pKey } from '../../src/core/crypto.js'
import { DEFAULT_PARAMS, makeChainConfig } from '../../src/core/params.js'
import { createStake, encodeStake } from '../../src/core/records.js'
import { topicName } from '../../src/network/topics.js'
import { CliPeer, killAll, rssMb, waitForPeers } from '../helpers/cli.js'
import { rawGossip } from '../helpers/hostile.js'
import { waitFor } from '../helpers/peers.js'
import { tempDirs } from '../helpers/tempdirs.js'

const SLOT_MS = 250
const KEYS = Number(process.env.FLOOD_KEYS ?? 60_000)
/** Announcements a second: about what blocks take (256 a slot), so the pools do not simply refuse it. */
const RATE = 1000
const BATCH = 100
const procs: CliPeer[] = []
const cleanups: (() => Promise<void>)[] = []
const temp = tempDirs('flood')

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => {})
  await killAll(procs)
  await temp.removeAll()
})

describe(`a stake flood of ${KEYS} keys against three pos-peer processes (devnet, slot ${SLOT_MS} ms)`, () => {
  it('stalls finality only until the inactivity leak ejects it; every peer stays under 250 MB', async () => {
    const network = 'flood'
    const home = await temp.make()
    const start = (name: string, stake: number, boot?: string) => {
      const p = new CliPeer([
        ...['--network', network, '--slot-ms', String(SLOT_MS), '--port', '0', '--stake', String(stake)],
        ...['--data-dir', join(home, name)],
        ...(boot === undefined ? [] : ['--bootstrap', boot]),
      ])
      procs.push(p)
      return p
    }
    const a = start('a', 40)
    await a.ready()
    const peers = [a, start('b', 30, a.addr), start('c', 30, a.addr)]
    await Promise.all(peers.map((p) => p.ready()))
    await waitForPeers(peers, () => peers.every((p) => p.of('peer:connect').length >= 2), 60_000, 'all connected')
    peers[1].send('61')
    await waitForPeers(
      peers,
      () => peers.every((p) => p.finalReadingBpms().includes(61)),
      60_000,
      'a first reading final',
    )

    const config = makeChainConfig({ name: network, slotMs: SLOT_MS })
    const t0 = performance.now()
    const frames: Uint8Array[] = []
    const spammer = await rawGossip(config, cleanups)
    const topic = topicName(config, 'stakes')
    type Into = Awaited<ReturnType<typeof spammer.open>>
    let into: Into | undefined = await spammer.open(a.addr, topic)
    for (let i = 0; i < KEYS; i += BATCH) {
      const batch: Uint8Array[] = []
      for (let k = i; k < Math.min(KEYS, i + BATCH); k++) {
        const key = signerFromLibp2pKey(await generateKeyPairFromSeed('Ed25519', sha256(utf8(`flood ${k}`))))
        // A commit it will never reveal: these keys never propose, and never vote.
        batch.push(encodeStake(createStake(config, key, 1, 1, sha256(utf8(`commit ${k}`)))))
      }
      frames.push(into.frame(batch))
    }
    const signedS = (performance.now() - t0) / 1000

    const rss = peers.map(() => 0)
    const sample = () => {
      for (const [i, p] of peers.entries()) if (p.child.pid !== undefined) rss[i] = Math.max(rss[i], rssMb(p.child.pid))
    }
    const finalHeight = () => Math.min(...peers.map((p) => (p.of('finalized').at(-1)?.height as number) ?? 0))
    const began = Date.now()
    // FLOOD_TRACE=1: every 2.5 s, each peer's RSS now and the final and head heights (where a peak falls).
    let ticks = 0
    const sampler = setInterval(() => {
      sample()
      if (process.env.FLOOD_TRACE === undefined || ++ticks % Number(process.env.FLOOD_TRACE_EVERY ?? 10) !== 0) return
      const now = peers.map((p) => (p.child.pid === undefined ? 0 : rssMb(p.child.pid)).toFixed(0)).join(' / ')
      const head = Math.max(...peers.map((p) => (p.of('block').at(-1)?.height as number) ?? 0))
      console.log(`t=${((Date.now() - began) / 1000).toFixed(1)}s RSS ${now} final ${finalHeight()} head ${head}`)
    }, 250)
    let sent = 0
    let delivered = 0
    let cutOff = 0
    let redialAt = 0
    try {
      while (sent < frames.length) {
        const due = Math.min(frames.length, Math.floor(((Date.now() - began) * RATE) / 1000 / BATCH))
        for (; sent < due; sent++) {
          if (into === undefined) continue
          try {
            await into.send(frames[sent])
            delivered += BATCH
          } catch {
            cutOff++
            into = undefined
          }
        }
        if (into === undefined && Date.now() >= redialAt) {
          redialAt = Date.now() + 500
          into = await spammer.open(a.addr, topic).catch(() => undefined)
        }
        await new Promise((r) => setTimeout(r, 20))
      }
      const floodS = (Date.now() - began) / 1000
      // The flood has stalled finality (it outweighs the honest 100 and never votes).
      const stalledAt = finalHeight()
      await waitFor(
        () => peers.every((p) => (p.of('block').at(-1)?.height as number) > stalledAt + 32),
        60_000,
        'the chain growing past the stall',
      )
      expect(finalHeight()).toBeLessThan(stalledAt + 8)
      // A reading typed during the stall: final on all once the leak has ejected the silent flood.
      peers[2].send('62')
      await waitForPeers(
        peers,
        () => peers.every((p) => p.finalReadingBpms().includes(62)),
        (DEFAULT_PARAMS.inactivityBlocks * SLOT_MS * 3) / 2 + 60_000,
        'finality back after the inactivity leak',
        500,
      )
      const resumedS = (Date.now() - began) / 1000
      sample()
      const warned = peers.some((p) =>
        p.of('warning').some((w) => /new stake is growing fast/.test(w.message as string)),
      )
      console.log(
        '| flood keys | signed in s | delivered | cut off | flood sent in s | final height at the stall | final again after s | warned | peak RSS MB a / b / c |\n| ---: | ---: | ---: | ---: | ---: | ---: | ---: | :---: | ---: |',
      )
      console.log(
        `| ${KEYS} | ${signedS.toFixed(1)} | ${delivered} | ${cutOff} | ${floodS.toFixed(0)} | ${stalledAt} | ${resumedS.toFixed(0)} | ${warned ? 'yes' : 'no'} | ${rss.map((x) => x.toFixed(0)).join(' / ')} |`,
      )
      expect(warned).toBe(true)
      for (const mb of rss) expect(mb).toBeLessThan(250)
    } finally {
      clearInterval(sampler)
    }
  }, 600_000)
})
