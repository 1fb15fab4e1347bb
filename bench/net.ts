// Network benchmark: N local peers as separate processes. Prints tables; not a test.
// Run: npm run bench:net [-- --sizes 5,10,20 --seconds 40 --slot-ms 1000 --sync-blocks 3000 (0: no late joiner)]
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { generateKeyPairSync, sign, verify } from 'node:crypto'
import { mkdtemp, rm } from 'node:fs/promises'
import { cpus, tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { utf8 } from '../src/core/bytes.js'
import { Chain } from '../src/core/chain.js'
import { sha256, signerFromSeed } from '../src/core/crypto.js'
import { Mempool } from '../src/core/mempool.js'
import { makeChainConfig, slotStart } from '../src/core/params.js'
import { buildSignedCandidate } from '../src/core/proposer.js'
import { createReading, createStake, decodeBlock, signatureChecks } from '../src/core/records.js'
import { Store } from '../src/storage/store.js'

const argv = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) argv.set(process.argv[i], process.argv[i + 1])
const SIZES = (argv.get('--sizes') ?? '5,10,20')
  .split(',')
  .filter((x) => x !== '' && x !== 'none')
  .map(Number)
const SECONDS = Number(argv.get('--seconds') ?? 40)
const SLOT_MS = Number(argv.get('--slot-ms') ?? 1000)
const SYNC_BLOCKS = Number(argv.get('--sync-blocks') ?? 3000)
const WORKER = new URL('./net-worker.js', import.meta.url).pathname

interface Worker {
  proc: ChildProcessWithoutNullStreams
  lines: string[]
  peerId?: string
  addr?: string
}

function startWorker(args: string[]): Worker {
  const proc = spawn(process.execPath, [WORKER, ...args], { stdio: 'pipe' })
  const w: Worker = { proc, lines: [] }
  let buf = ''
  proc.stdout.on('data', (d: Buffer) => {
    buf += d.toString()
    const parts = buf.split('\n')
    buf = parts.pop() ?? ''
    for (const l of parts) {
      w.lines.push(l)
      if (l.startsWith('R ')) [, w.peerId, w.addr] = l.split(' ')
    }
  })
  proc.stderr.on('data', () => {})
  return w
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
async function until(cond: () => boolean, ms: number, what: string) {
  const end = Date.now() + ms
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timeout: ${what}`)
    await sleep(100)
  }
}
const pctl = (xs: number[], p: number) => {
  if (xs.length === 0) return Number.NaN
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]
}
async function stopAll(ws: Worker[]) {
  for (const w of ws) w.proc.stdin.write('stop\n')
  await Promise.all(
    ws.map(
      (w) =>
        new Promise<void>((r) => {
          const t = setTimeout(() => {
            w.proc.kill('SIGKILL')
            r()
          }, 5000)
          w.proc.on('exit', () => {
            clearTimeout(t)
            r()
          })
        }),
    ),
  )
}

async function runSize(n: number) {
  const stakes = Array.from({ length: n }, (_, i) => 10 * (i + 1))
  const ws: Worker[] = [startWorker(['--stake', String(stakes[0]), '--slot-ms', String(SLOT_MS)])]
  await until(() => ws[0].addr !== undefined, 20_000, 'first peer ready')
  for (let i = 1; i < n; i++)
    ws.push(
      startWorker(['--stake', String(stakes[i]), '--slot-ms', String(SLOT_MS), '--bootstrap', ws[0].addr as string]),
    )
  await until(() => ws.every((w) => w.addr !== undefined), 60_000, 'peers ready')
  // discovery: wait until every peer is connected to every other (bounded), then let the mesh settle
  const conns = (w: Worker) =>
    Number(
      w.lines
        .filter((l) => l.startsWith('P '))
        .at(-1)
        ?.split(' ')[1] ?? 0,
    )
  await until(() => ws.every((w) => conns(w) >= n - 1), 120_000, 'full mesh of connections').catch((err: Error) =>
    console.error(`${err.message}: ${ws.map(conns)}`),
  )
  // Every stake counting in the final state (activation delay and churn limit over), then settle.
  const waiting = (w: Worker) => w.lines.filter((l) => l.startsWith('W ')).at(-1) ?? 'W ?'
  await until(() => ws.every((w) => waiting(w) === 'W 0 0'), 120_000, 'every stake counting').catch((err: Error) =>
    console.error(`${err.message}: ${ws.map(waiting)}`),
  )
  await sleep(5000)
  const t0 = Date.now()
  // Input: one reading per second on a rotating peer.
  let k = 0
  while (Date.now() - t0 < SECONDS * 1000) {
    ws[k % n].proc.stdin.write(`bpm ${60 + (k % 80)}\n`)
    k++
    await sleep(1000)
  }
  await sleep(6 * SLOT_MS)
  const rss = ws.map((w) =>
    Number(
      w.lines
        .filter((l) => l.startsWith('M '))
        .at(-1)
        ?.split(' ')[1] ?? 0,
    ),
  )
  await stopAll(ws)

  // candidate propagation: local publish time -> receive time on every other peer
  const published = new Map<string, number>()
  for (const w of ws)
    for (const l of w.lines)
      if (l.startsWith('C ') && l.split(' ')[2] === '1') published.set(l.split(' ')[1], Number(l.split(' ')[3]))
  const prop: number[] = []
  for (const [hash, t] of published) {
    if (t < t0) continue
    let last = 0
    let seen = 0
    for (const w of ws) {
      const line = w.lines.find((l) => l.startsWith(`C ${hash} 0 `))
      if (line !== undefined) {
        seen++
        last = Math.max(last, Number(line.split(' ')[3]))
      }
    }
    if (seen === n - 1) prop.push(last - t)
  }
  // reading submitted -> final on every peer (and -> first in a block, approximated by final)
  const submitted = new Map<string, number>()
  for (const w of ws)
    for (const l of w.lines) if (l.startsWith('S ')) submitted.set(l.split(' ')[1], Number(l.split(' ')[2]))
  const latency = (tag: string) => {
    const out: number[] = []
    let missing = 0
    for (const [id, t] of submitted) {
      let last = 0
      let all = true
      for (const w of ws) {
        // first time this peer saw it in a canonical block / final
        const line = w.lines.find((l) => l.startsWith(`${tag} ${id} `))
        if (line === undefined) all = false
        else last = Math.max(last, Number(line.split(' ')[2]))
      }
      if (all) out.push(last - t)
      else missing++
    }
    return { out, missing }
  }
  const { out: toFinal, missing } = latency('F')
  const { out: toBlock } = latency('B')
  // heads agreeing per slot: slots in the measured window where every peer sampled the same head
  const heads = new Map<number, Set<string>>()
  const counts = new Map<number, number>()
  for (const w of ws)
    for (const l of w.lines)
      if (l.startsWith('H ')) {
        const [, s, h] = l.split(' ')
        const slot = Number(s)
        if (slotStart(makeChainConfig({ name: 'bench', slotMs: SLOT_MS }).params, slot) < t0) continue
        if (!heads.has(slot)) heads.set(slot, new Set())
        heads.get(slot)?.add(h)
        counts.set(slot, (counts.get(slot) ?? 0) + 1)
      }
  const full = [...heads.entries()].filter(([s]) => counts.get(s) === n)
  const agree = full.filter(([, set]) => set.size === 1).length
  return {
    n,
    prop50: pctl(prop, 50),
    prop99: pctl(prop, 99),
    candidates: prop.length,
    fin50: pctl(toFinal, 50),
    fin99: pctl(toFinal, 99),
    blk50: pctl(toBlock, 50),
    blk99: pctl(toBlock, 99),
    readings: submitted.size,
    missing,
    agreePct: full.length === 0 ? Number.NaN : (100 * agree) / full.length,
    rssMax: Math.max(...rss) / 2 ** 20,
    rssAvg: rss.reduce((a, b) => a + b, 0) / rss.length / 2 ** 20,
  }
}

/** A data dir with a SYNC_BLOCKS-long final chain (3 validators, one reading per block). */
async function buildChain(dir: string) {
  const net = makeChainConfig({ name: 'bench', slotMs: SLOT_MS })
  const store = new Store(net, { path: join(dir, 'chain') })
  await store.open()
  const chain = new Chain(net)
  const mempool = new Mempool()
  const signers = await Promise.all(
    [0, 1, 2].map(async (i) => {
      const k = await generateKeyPairFromSeed('Ed25519', sha256(utf8(`bench ${i}`)))
      return signerFromSeed(k.raw.subarray(0, 32), k.raw.subarray(32))
    }),
  )
  let slot = 1
  const seqs = [0, 0, 0]
  while (chain.root.height < SYNC_BLOCKS) {
    if (slot % 100 === 1)
      for (const [i, s] of signers.entries()) mempool.addStake(createStake(net, s, 10 * (i + 1), ++seqs[i]))
    mempool.addReading(createReading(net, signers[slot % 3], 60 + (slot % 50), slotStart(net.params, slot)))
    // every validator builds on the same head, then all candidates are imported (as on the network)
    const candidates = signers.map((s) => buildSignedCandidate(chain, mempool, s, slot))
    for (const b of candidates) {
      if (b !== undefined) await store.saveImport(chain.import(b, slotStart(net.params, slot) + 10))
    }
    mempool.pruneFinal(chain)
    slot++
  }
  // Signatures a joiner checks per block: the block's, its records', and its vote headers'.
  let checks = 0
  for (let from = 1; from <= chain.root.height; from += 256) {
    for (const bytes of await store.finalBlocksFrom(from, Math.min(256, chain.root.height - from + 1)))
      checks += signatureChecks(net, decodeBlock(net, bytes)).length
  }
  await store.close()
  return { height: chain.root.height, sigsPerBlock: checks / chain.root.height }
}

function verifyRate(): number {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519')
  const msg = Buffer.alloc(100, 7)
  const sig = sign(null, msg, privateKey)
  const t = performance.now()
  let n = 0
  while (performance.now() - t < 1000) {
    verify(null, msg, publicKey, sig)
    n++
  }
  return n / ((performance.now() - t) / 1000)
}

async function runSync() {
  const dir = await mkdtemp(join(tmpdir(), 'pos-peer-bench-'))
  try {
    const { height, sigsPerBlock } = await buildChain(dir)
    const server = startWorker(['--stake', '0', '--slot-ms', String(SLOT_MS), '--data-dir', dir])
    await until(() => server.addr !== undefined, 20_000, 'server ready')
    const t0 = Date.now()
    const joiner = startWorker(['--stake', '0', '--slot-ms', String(SLOT_MS), '--bootstrap', server.addr as string])
    await until(
      () => joiner.lines.some((l) => l.startsWith('Y ') && Number(l.split(' ')[1]) >= height),
      300_000,
      'joiner synced',
    )
    const secs = (Date.now() - t0) / 1000
    // The sync phase alone: from the first batch imported to the last (process start, connection
    // and status exchange excluded).
    const ys = joiner.lines.filter((l) => l.startsWith('Y ')).map((l) => l.split(' ').map(Number))
    const first = ys[0]
    const last = ys.find((y) => y[1] >= height) ?? ys[ys.length - 1]
    const phaseSecs = (last[3] - first[3]) / 1000
    const phaseBlocks = last[2] - first[2]
    await stopAll([server, joiner])
    const verifies = verifyRate()
    return {
      height,
      secs,
      blocksPerSec: height / secs,
      sigsPerSec: (height * sigsPerBlock) / secs,
      phaseBlocksPerSec: phaseBlocks / phaseSecs,
      phaseSigsPerSec: (phaseBlocks * sigsPerBlock) / phaseSecs,
      verifies,
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

console.log(
  `pos-peer bench:net  node ${process.version}, ${cpus().length} x ${cpus()[0]?.model ?? 'cpu'}, slot ${SLOT_MS} ms, ${SECONDS} s of input (1 reading/s)\n`,
)
console.log(
  '| peers | candidate propagation p50 / p99 (ms) | reading -> in a block on all p50 / p99 (ms) | reading -> final on all p50 / p99 (ms) | readings (missing) | heads agreeing per slot | RSS per peer avg / max (MB) |',
)
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
for (const n of SIZES) {
  const r = await runSize(n)
  console.log(
    `| ${r.n} | ${r.prop50} / ${r.prop99} (${r.candidates} candidates) | ${r.blk50} / ${r.blk99} | ${r.fin50} / ${r.fin99} | ${r.readings} (${r.missing}) | ${r.agreePct.toFixed(1)}% | ${r.rssAvg.toFixed(0)} / ${r.rssMax.toFixed(0)} |`,
  )
}
// --sync-blocks 0: the network sizes only, no late joiner.
if (SYNC_BLOCKS > 0) {
  const s = await runSync()
  console.log(
    `\n| late joiner sync | blocks | seconds (from process start) | blocks/s | sync phase blocks/s | sync phase signatures/s | raw Ed25519 verify/s (1 core) | sync phase / raw |`,
  )
  console.log('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
  console.log(
    `| range sync | ${s.height} | ${s.secs.toFixed(1)} | ${s.blocksPerSec.toFixed(0)} | ${s.phaseBlocksPerSec.toFixed(0)} | ${s.phaseSigsPerSec.toFixed(0)} | ${s.verifies.toFixed(0)} | ${((100 * s.phaseSigsPerSec) / s.verifies).toFixed(0)}% |`,
  )
}
