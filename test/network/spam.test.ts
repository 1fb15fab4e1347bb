// Reading spam against real pos-peer processes (issue 10): a stranger with no stake publishes
// 10,000 valid readings a second (100 to a gossipsub frame), from one key and from 1,000 keys, into one honest peer, while
// users type readings on all three. Honest readings stay fast to finality and no peer's memory
// runs away. `npm run bench:spam` runs it longer (SPAM_SECONDS) and the table goes into
// docs/PERFORMANCE.md.
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { afterEach, describe, expect, it } from 'vitest'
import { type Signer, signerFromLibp2pKey } from '../../src/core/crypto.js'
import { configFromGenesis } from '../../src/core/genesis.js'
import { makeChainConfig, slotAt } from '../../src/core/params.js'
import { createReading, encodeReading } from '../../src/core/records.js'
import { topicName } from '../../src/network/topics.js'
import { CliPeer, type JsonEvent, killAll, rssMb, runCli, waitForPeers } from '../helpers/cli.js'
import { rawGossip } from '../helpers/hostile.js'
import { tempDirs } from '../helpers/tempdirs.js'

const SLOT_MS = 1000
const RATE = 10_000
const BATCH = 100
const SECONDS = Number(process.env.SPAM_SECONDS ?? 10)
const procs: CliPeer[] = []
const cleanups: (() => Promise<void>)[] = []
const temp = tempDirs('spam')

afterEach(async () => {
  for (const c of cleanups.splice(0)) await c().catch(() => {})
  await killAll(procs)
  await temp.removeAll()
})

/**
 * When each reading became final on this peer (ms since epoch): the first `finalized` event at or
 * above the highest block (by this peer's `block` events) that holds it. (The highest: a reading
 * in a losing candidate and again in a later block counts from the later one, never too early.)
 */
function finalTimes(p: CliPeer): Map<string, number> {
  const height = new Map<string, number>()
  for (const b of p.of('block'))
    for (const r of b.readings as { id: string }[])
      height.set(r.id, Math.max(height.get(r.id) ?? 0, b.height as number))
  const finals = p.of('finalized').map((f) => ({ height: f.height as number, t: Date.parse(f.time as string) }))
  const out = new Map<string, number>()
  for (const [id, h] of height) {
    const f = finals.find((x) => x.height >= h)
    if (f !== undefined) out.set(id, f.t)
  }
  return out
}

/**
 * `fee`: a genesis network whose readings cost that many tokens (the three peers hold 1,000 each,
 * the spammer's keys none); else the open devnet.
 */
async function spamRun(keys: number, network: string, fee?: number) {
  const home = await temp.make()
  let config = makeChainConfig({ name: network, slotMs: SLOT_MS })
  let net = ['--network', network, '--slot-ms', String(SLOT_MS), '--port', '0']
  if (fee !== undefined) {
    const file = join(home, 'genesis.json')
    const made = await runCli([
      'genesis',
      ...['--network', network, '--slot-ms', String(SLOT_MS), '--reading-fee', String(fee), '--out', file],
      ...['a', 'b', 'c'].flatMap((n) => ['--account-dir', `${join(home, n)}=1000`]),
    ])
    expect(made.code, made.stderr).toBe(0)
    config = configFromGenesis(JSON.parse(await readFile(file, 'utf8')))
    net = ['--genesis', file, '--port', '0']
  }
  const start = (name: string, stake: number, boot?: string) => {
    const p = new CliPeer([
      ...net,
      '--stake',
      String(stake),
      '--data-dir',
      join(home, name),
      ...(boot === undefined ? [] : ['--bootstrap', boot]),
    ])
    procs.push(p)
    return p
  }
  const a = start('a', 50)
  await a.ready()
  const peers = [a, start('b', 30, a.addr), start('c', 20, a.addr)]
  await Promise.all(peers.map((p) => p.ready()))
  await waitForPeers(peers, () => peers.every((p) => p.of('peer:connect').length >= 2), 60_000, 'all connected')
  // Every stake counting (activation delay, churn) and the chain finalizing, before the spam: a
  // user on c types a reading every 2 s until every peer holds blocks won by all three (a block
  // needs counted stake to be valid) and the first of those readings is final on all. (Typed
  // readings keep the validators proposing; a quiet network makes no blocks to win.)
  const ids = peers.map((p) => p.of('ready')[0].peerId as string)
  let setup = 0
  const typeSetup = () => peers[2].send(String(90 + (setup++ % 10)))
  typeSetup()
  const setupTimer = setInterval(typeSetup, 2000)
  try {
    await waitForPeers(
      peers,
      () =>
        peers.every(
          (p) => p.finalReadingBpms().includes(90) && ids.every((id) => p.of('block').some((b) => b.proposer === id)),
        ),
      90_000,
      'blocks won by all three validators and a first reading final on every peer',
    )
  } finally {
    clearInterval(setupTimer)
  }
  // The last of those readings final too, so the spam starts on a quiet network.
  const setupReadings = () => peers[2].of('reading').filter((e) => (e.bpm as number) >= 90 && (e.bpm as number) < 100)
  /** The last setup reading's id, once c has taken in every one typed. */
  const lastSetup = () => {
    const taken = setupReadings()
    return taken.length === setup ? (taken.at(-1)?.id as string | undefined) : undefined
  }
  try {
    await waitForPeers(
      peers,
      () => {
        const id = lastSetup()
        return id !== undefined && peers.every((p) => finalTimes(p).has(id))
      },
      60_000,
      'the last setup reading final on every peer',
    )
  } catch (err) {
    const id = lastSetup()
    throw new Error(
      `${(err as Error).message}\n  ${setup} setup readings typed, ${setupReadings().length} taken in on c; the last final on a / b / c: ${peers.map((p) => (id !== undefined && finalTimes(p).has(id) ? 'yes' : 'no')).join(' / ')}`,
    )
  }

  // The spam: readings signed in advance (a spammer's CPU is not ours to measure), published at RATE.
  const signers: Signer[] = []
  for (let i = 0; i < keys; i++) signers.push(signerFromLibp2pKey(await generateKeyPair('Ed25519')))
  const total = RATE * SECONDS
  const t0 = Date.now() + 2000
  const spam: Uint8Array[] = []
  for (let i = 0; i < total; i++) {
    const author = signers[i % keys]
    const n = Math.floor(i / keys)
    // BPM 40..89: the setup readings are 90..99 and the typed ones 100 and up, so none are confused.
    spam.push(encodeReading(createReading(config, author, 40 + (n % 50), t0 + Math.floor(n / 50))))
  }
  const spammer = await rawGossip(config, cleanups)
  const topic = topicName(config, 'readings')
  type Into = Awaited<ReturnType<typeof spammer.open>>
  let into: Into | undefined = await spammer.open(a.addr, topic)
  // 100 readings to a frame, a frame every 10 ms.
  const frames: Uint8Array[] = []
  for (let i = 0; i < spam.length; i += BATCH) frames.push(into.frame(spam.slice(i, i + BATCH)))
  const rss = peers.map(() => 0)
  const sample = () => {
    for (const [i, p] of peers.entries()) if (p.child.pid !== undefined) rss[i] = Math.max(rss[i], rssMb(p.child.pid))
  }
  let ticks = 0
  const sampler = setInterval(() => {
    sample()
    // SPAM_TRACE=1: every second, each peer's RSS now.
    if (process.env.SPAM_TRACE !== undefined && ++ticks % 4 === 0)
      console.log(
        `rss at ${((Date.now() - began) / 1000).toFixed(0)} s: ${peers.map((p) => (p.child.pid === undefined ? 0 : rssMb(p.child.pid)).toFixed(0)).join(' / ')}`,
      )
  }, 250)
  const began = Date.now()
  let sent = 0
  let delivered = 0
  let cutOffAfter: number | undefined
  let redialAt = 0
  // A user types a reading on each peer in turn, every 1.5 s, on a timer of its own: the send loop
  // below waits whenever the victim reads slowly, and typing must not wait with it.
  let typed = 0
  const typedAt = new Map<number, number>()
  const type = () => {
    typedAt.set(100 + typed, Date.now())
    peers[typed % 3].send(String(100 + typed))
    typed++
  }
  type()
  const typist = setInterval(type, 1500)
  while (sent < frames.length) {
    // Paced to RATE: the frames due by now, then a turn of the event loop.
    const due = Math.min(frames.length, Math.floor(((Date.now() - began) * RATE) / 1000 / BATCH))
    for (; sent < due; sent++) {
      if (into === undefined) continue
      try {
        await into.send(frames[sent])
        delivered += BATCH
      } catch {
        // The victim closed the stream or hung up: the attacker dials again, every 500 ms.
        cutOffAfter ??= delivered
        into = undefined
      }
    }
    if (into === undefined && Date.now() >= redialAt) {
      redialAt = Date.now() + 500
      into = await spammer.open(a.addr, topic).catch(() => undefined)
    }
    await new Promise((r) => setTimeout(r, 10))
  }
  clearInterval(typist)
  const spamMs = Date.now() - began
  const typedBpms = Array.from({ length: typed }, (_, i) => 100 + i)
  try {
    await waitForPeers(
      peers,
      () => {
        const ids = peers
          .flatMap((p) => p.of('reading'))
          .filter((e) => (e.bpm as number) >= 100)
          .map((e) => e.id as string)
        return ids.length === typed && peers.every((p) => ids.every((id) => finalTimes(p).has(id)))
      },
      60_000,
      'every typed reading final on every peer',
      500,
    )
  } finally {
    clearInterval(sampler)
  }
  sample()
  // Latency of each typed reading: from its `reading` event on the peer it was typed on to final on each peer.
  const submitted = peers.flatMap((p) => p.of('reading')).filter((e: JsonEvent) => typedBpms.includes(e.bpm as number))
  const finals = peers.map(finalTimes)
  const slots: number[] = []
  for (const r of submitted) {
    const at = Date.parse(r.time as string)
    for (const f of finals) slots.push(((f.get(r.id as string) ?? Number.POSITIVE_INFINITY) - at) / SLOT_MS)
  }
  slots.sort((x, y) => x - y)
  // Slots from a typed reading's own slot to the first block (on any peer's chain) that holds it.
  const blockSlot = new Map<string, number>()
  for (const p of peers)
    for (const b of p.of('block'))
      for (const r of b.readings as { id: string }[])
        blockSlot.set(r.id, Math.min(blockSlot.get(r.id) ?? Number.POSITIVE_INFINITY, b.slot as number))
  const included = submitted.map(
    (r) =>
      (blockSlot.get(r.id as string) ?? Number.POSITIVE_INFINITY) - slotAt(config.params, Date.parse(r.time as string)),
  )
  // SPAM_TRACE=1: each typed reading: when it was typed (s into the spam, and how far into its
  // slot), how many slots later a block held it, and its slots to final on a / b / c. Without it,
  // the slow ones only (over 3.4 slots on some peer), so a failed run says what happened.
  for (const [i, r] of submitted.entries()) {
    const at = Date.parse(r.time as string)
    const each = finals.map((f) => (((f.get(r.id as string) ?? Number.NaN) - at) / SLOT_MS).toFixed(2))
    const phase = ((at - config.params.genesisTime) % SLOT_MS) / SLOT_MS
    const slow = each.some((x) => Number(x) > 3.4)
    if (process.env.SPAM_TRACE === undefined && !slow) continue
    console.log(
      `typed ${r.bpm} at ${((at - began) / 1000).toFixed(1)} s (${phase.toFixed(2)} into its slot): in a block ${included[i]} slots on, final after ${each.join(' / ')} slots`,
    )
    // A slow one: what each peer saw from its slot on. Blocks as they joined its canonical chain:
    // s<slot>@<slot>+<fraction> of when, height, proposer, hash < parent, readings (* holds this
    // one); finalized heights and reorgs with when; its warnings of slots started late.
    if (slow) {
      const s0 = slotAt(config.params, at)
      const rel = (t: string) => {
        const ms = Date.parse(t) - config.params.genesisTime
        return `${Math.floor(ms / SLOT_MS) - s0}+${((ms % SLOT_MS) / SLOT_MS).toFixed(2)}`
      }
      for (const [pi, p] of peers.entries()) {
        const inWindow = (t: string) => {
          const s = slotAt(config.params, Date.parse(t)) - s0
          return s >= 0 && s <= 6
        }
        const blocks = p
          .of('block')
          .filter((b) => inWindow(b.time as string))
          .map(
            (b) =>
              `s${(b.slot as number) - s0}@${rel(b.time as string)} h${b.height} ${(b.proposer as string).slice(-4)} ${(b.hash as string).slice(0, 6)}<${(b.parent as string).slice(0, 6)} n${(b.readings as unknown[]).length}${(b.readings as { id: string }[]).some((x) => x.id === r.id) ? ' *' : ''}`,
          )
        const fin = p
          .of('finalized')
          .filter((f) => inWindow(f.time as string))
          .map((f) => `h${f.height}@${rel(f.time as string)}`)
        const reorgs = p
          .of('reorg')
          .filter((e) => inWindow(e.time as string))
          .map((e) => `depth ${e.depth}@${rel(e.time as string)}`)
        const late = p.stderr.split('\n').filter((l) => l.includes(' late'))
        console.log(
          `  peer ${'abc'[pi]}: blocks ${blocks.join(', ')}\n          finalized ${fin.join(', ')}; reorgs ${reorgs.join(', ') || 'none'}; late slots (whole run): ${late.length === 0 ? 'none' : late.join(' | ')}`,
        )
      }
    }
  }
  for (const r of submitted)
    for (const [i, f] of finals.entries())
      if (!f.has(r.id as string))
        console.log(
          `not final on peer ${i}: ${JSON.stringify(r)} in blocks ${JSON.stringify(
            peers[i]
              .of('block')
              .filter((b) => (b.readings as { id: string }[]).some((x) => x.id === r.id))
              .map((b) => [b.height, b.hash]),
          )} finalized ${JSON.stringify(peers[i].of('finalized').slice(-3))}`,
        )
  // Spam readings are BPM 40..89 (the setup's 90..99, the typed ones 100 and up).
  const spamFinal = peers[0].finalReadingBpms().filter((b) => b < 90).length
  // How late a peer took a typed line in: its event loop's delay (the `reading` event is emitted
  // once the reading is signed and stored).
  const heard = submitted.map((r) => Date.parse(r.time as string) - (typedAt.get(r.bpm as number) ?? 0))
  const row = {
    keys,
    heardMs: Math.max(...heard),
    sentPerSecond: Math.round((delivered * 1000) / spamMs),
    cutOffAfter,
    included: Math.max(...included),
    typed,
    p50: slots[Math.floor(slots.length / 2)],
    max: slots.at(-1) ?? Number.POSITIVE_INFINITY,
    rss,
    spamFinal,
  }
  console.log(
    `| ${keys}${fee === undefined ? '' : ` (genesis network, fee ${fee})`} | ${row.sentPerSecond} | ${cutOffAfter === undefined ? 'no' : `after ${cutOffAfter}`} | ${typed} | ${row.included} | ${row.p50.toFixed(2)} | ${row.max.toFixed(2)} | ${row.heardMs} | ${rss.map((x) => x.toFixed(0)).join(' / ')} | ${spamFinal} |`,
  )
  return { row, submitted }
}

describe(`reading spam at ${RATE}/s for ${SECONDS} s against three pos-peer processes (slot ${SLOT_MS} ms)`, () => {
  console.log(
    '| spam keys | spam delivered/s | spammer cut off | typed readings | in a block after, slots (max) | final after, slots (p50) | final after, slots (max) | typed line taken in after, ms (max) | peak RSS MB a / b / c | spam readings final |',
  )
  console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  for (const keys of [1, 1000]) {
    it(`from ${keys} key${keys === 1 ? '' : 's'}: typed readings are final on every peer within 4 slots; every peer under 250 MB`, async () => {
      const { row, submitted } = await spamRun(keys, `spam${keys}`)
      expect(submitted).toHaveLength(row.typed)
      // The spam arrived at the full rate, or the victim cut the spammer off.
      if (row.cutOffAfter === undefined) expect(row.sentPerSecond).toBeGreaterThan(RATE * 0.8)
      // Not starved by the spam (a generous bound: the 4-slot goal and what we get are in docs/PERFORMANCE.md).
      expect(row.included).toBeLessThanOrEqual(8)
      // No peer's event loop is held by the spam (a relay's backlog held them 6-10 s before the
      // validation queues: network/gossip-queues.ts).
      expect(row.heardMs).toBeLessThan(3000)
      // Final on every peer within 4 slots, the goal. (A reading typed at a slot's start waits about
      // 3: the next block, its votes, the votes on those. A block read behind its sender's forwarded
      // spam measured 3.9-5.0 before gossip read ahead of validation: docs/PERFORMANCE.md.)
      expect(row.max).toBeLessThanOrEqual(4)
      for (const mb of row.rss) expect(mb).toBeLessThan(250)
    }, 180_000)
  }
  it('from 1000 keys without tokens on a genesis network with a reading fee: none of it lands, typed readings become final on every peer', async () => {
    const { row, submitted } = await spamRun(1000, 'spamfee', 1)
    expect(submitted).toHaveLength(row.typed)
    expect(row.spamFinal).toBe(0)
    expect(row.included).toBeLessThanOrEqual(8)
    for (const mb of row.rss) expect(mb).toBeLessThan(250)
  }, 180_000)
})
