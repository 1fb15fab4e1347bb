// Chaos soak: `npm run soak -- --minutes N [--peers 5] [--report docs/RELIABILITY.md]`.
// Real `pos-peer --json` processes (each on a network namespace of its own when run as root with
// iproute2, else on 127.0.0.1), honest readings typed throughout, and a schedule of faults:
// SIGKILL and restart, graceful leave and rejoin, partitions of one or two hosts and heal, one
// peer's clock 300 ms off (POS_PEER_CLOCK_OFFSET_MS), CPU stress, and a hostile stranger
// replaying cheap tricks (bench/soak-hostile.ts). At the end every data dir is read back and the
// run fails (exit 1) unless: no reading lost or duplicated, every peer holds the same final chain,
// no honest peer refused another, finality resumed after every heal, RSS stayed bounded.
import { spawn } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { makeChainConfig } from '../src/core/params.js'
import { decodeBlock } from '../src/core/records.js'
import { Store } from '../src/storage/store.js'
import { CliPeer } from '../test/helpers/cli.js'
import { NetnsLab } from '../test/helpers/netns.js'

const args = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], process.argv[i + 1])
const MINUTES = Number(args.get('--minutes') ?? 2)
const PEERS = Math.max(5, Number(args.get('--peers') ?? 5))
const SLOT_MS = Number(args.get('--slot-ms') ?? 500)
const REPORT = args.get('--report') ?? 'test-artifacts/soak-report.md'
const RSS_LIMIT_MB = 250
const NETWORK = 'soak'
const net = makeChainConfig({ name: NETWORK, slotMs: SLOT_MS })
let seed = Number(args.get('--seed') ?? 7)
const rand = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31
  return seed / 2 ** 31
}
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const log = (msg: string) => console.log(`[${((Date.now() - t0) / 1000).toFixed(0).padStart(4)} s] ${msg}`)

const names = Array.from({ length: PEERS }, (_, i) => `peer${i + 1}`)
const stakes = names.map((_, i) => 10 * (i + 1))
const skewed = names[PEERS - 1]
const useNetns = NetnsLab.available()
const lab = useNetns ? NetnsLab.create([...names, 'hostile']) : undefined
const root = mkdtempSync(join(tmpdir(), 'pos-peer-soak-'))
const t0 = Date.now()

const addr = (i: number) =>
  lab === undefined ? `/ip4/127.0.0.1/tcp/${19400 + i}` : `/ip4/${lab.ips.get(names[i])}/tcp/9090`
function peerArgs(i: number): string[] {
  const host = lab === undefined ? '127.0.0.1' : (lab.ips.get(names[i]) as string)
  const port = lab === undefined ? String(19400 + i) : '9090'
  const others = names.flatMap((_, j) => (j === i ? [] : ['--bootstrap', addr(j)]))
  return [
    '--stake',
    String(stakes[i]),
    '--data-dir',
    join(root, names[i]),
    '--network',
    NETWORK,
    '--slot-ms',
    String(SLOT_MS),
    '--host',
    host,
    '--port',
    port,
    ...others,
  ]
}

const current = new Map<string, CliPeer>()
const instances: { name: string; peer: CliPeer }[] = []
function start(name: string): CliPeer {
  const i = names.indexOf(name)
  const env = name === skewed ? { POS_PEER_CLOCK_OFFSET_MS: '300' } : {}
  const p = new CliPeer(peerArgs(i), env, lab?.exec(name) ?? [])
  current.set(name, p)
  instances.push({ name, peer: p })
  return p
}
const live = () => [...current.entries()].filter(([, p]) => p.exitCode === undefined && p.of('ready').length > 0)

// --- measurements --------------------------------------------------------------------------------

const rssMax = new Map<string, number>()
const sampleRss = () => {
  for (const [name, p] of live()) {
    try {
      const status = readFileSync(`/proc/${p.child.pid}/status`, 'utf8')
      const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
      rssMax.set(name, Math.max(rssMax.get(name) ?? 0, kb / 1024))
    } catch {
      // exited between the check and the read
    }
  }
}
const finalizedHeight = (p: CliPeer) => Math.max(0, ...p.of('finalized').map((f) => f.height as number))

const faults: { at: number; kind: string; detail: string; resumeSlots?: number }[] = []

async function finalityResumes(kind: string, detail: string): Promise<void> {
  const at = Date.now()
  const before = Math.max(...live().map(([, p]) => finalizedHeight(p)))
  const deadline = at + 90_000
  while (Date.now() < deadline && !live().every(([, p]) => finalizedHeight(p) > before)) await sleep(100)
  const ok = live().every(([, p]) => finalizedHeight(p) > before)
  const resumeSlots = ok ? Math.ceil((Date.now() - at) / SLOT_MS) : Number.POSITIVE_INFINITY
  faults.push({ at: at - t0, kind, detail, resumeSlots })
  log(`${kind} ${detail}: finality resumed on every live peer after ${resumeSlots} slots`)
}

// --- faults ---------------------------------------------------------------------------------------

const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]

async function kill9(): Promise<void> {
  const [name, p] = pick(live())
  p.kill('SIGKILL')
  await p.exit(10_000)
  await sleep(3000)
  await start(name).ready(30_000)
  await finalityResumes('SIGKILL + restart', name)
}

async function leave(): Promise<void> {
  const [name, p] = pick(live())
  p.kill('SIGTERM')
  const code = await p.exit(20_000)
  if (code !== 0) problems.push(`${name} exited ${code} on SIGTERM`)
  await sleep(8000)
  await start(name).ready(30_000)
  await finalityResumes('leave + rejoin', `${name} (exit ${code})`)
}

async function partition(): Promise<void> {
  if (lab === undefined) return
  const cut = rand() < 0.5 ? [pick(names)] : [pick(names.slice(0, 2)), pick(names.slice(2))]
  for (const h of cut) lab.setLink(h, false)
  await sleep(15_000)
  for (const h of cut) lab.setLink(h, true)
  await finalityResumes('partition 15 s + heal', cut.join('+'))
}

async function stress(): Promise<void> {
  const busy = Array.from({ length: cpus().length }, () =>
    spawn(process.execPath, ['-e', 'const e = Date.now() + 15000; while (Date.now() < e) {}'], { stdio: 'ignore' }),
  )
  await Promise.all(busy.map((b) => new Promise((r) => b.on('exit', r))))
  await finalityResumes('CPU stress 15 s', `${busy.length} busy processes`)
}

const hostileLines: string[] = []
async function hostile(): Promise<void> {
  const targets = live().map(([, p]) => p.addr)
  const script = join(dirname(new URL(import.meta.url).pathname), 'soak-hostile.js')
  const argv = [
    ...(lab?.exec('hostile') ?? []),
    process.execPath,
    script,
    '--network',
    NETWORK,
    '--slot-ms',
    String(SLOT_MS),
    '--targets',
    targets.join(','),
    '--seconds',
    '15',
  ]
  const child = spawn(argv[0], argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] })
  let out = ''
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString()
  })
  await new Promise((r) => child.on('exit', r))
  hostileLines.push(out.trim())
  await finalityResumes('hostile stranger 15 s', out.trim())
}

// --- the run --------------------------------------------------------------------------------------

const problems: string[] = []
let stopping = false
async function main(): Promise<void> {
  log(
    `${PEERS} peers (stakes ${stakes.join('/')}), slot ${SLOT_MS} ms, ${useNetns ? 'network namespaces' : 'loopback (no partitions: needs root and iproute2)'}, ${MINUTES} min`,
  )
  for (const n of names) start(n)
  await Promise.all(names.map((n) => (current.get(n) as CliPeer).ready(30_000)))
  const rssTimer = setInterval(sampleRss, 2000)
  // Honest input throughout: one reading every ~1.5 s on a random live peer.
  let typed = 0
  const typing = (async () => {
    while (!stopping) {
      const l = live()
      if (l.length > 0) {
        pick(l)[1].send(String(50 + Math.floor(rand() * 100)))
        typed++
      }
      await sleep(1500)
    }
  })()
  await sleep(10_000)
  const schedule = [kill9, partition, stress, leave, hostile]
  const deadline = t0 + MINUTES * 60_000 - 30_000
  for (let k = 0; Date.now() < deadline; k++) {
    await schedule[k % schedule.length]()
    await sleep(3000)
  }
  stopping = true
  await typing
  log(`faults over; ${typed} readings typed; 30 s of calm for the last ones to be final`)
  await sleep(30_000)
  clearInterval(rssTimer)
  sampleRss()
  for (const [, p] of live()) p.kill('SIGTERM')
  for (const [, p] of current) await p.exit(20_000).catch(() => p.kill('SIGKILL'))
  await check()
}

async function check(): Promise<void> {
  const accepted = new Set(instances.flatMap(({ peer }) => peer.of('reading').map((e) => e.id as string)))
  const ids = new Map<string, string>()
  for (const { name, peer } of instances) {
    const r = peer.of('ready')[0]
    if (r !== undefined) ids.set(r.peerId as string, name)
  }
  const refusals = instances.flatMap(({ name, peer }) =>
    peer
      .of('warning')
      .map((w) => String(w.message))
      .filter((m) => [...ids.keys()].some((id) => m.startsWith(`refused peer ${id}`)))
      .map((m) => `${name}: ${m}`),
  )
  const chains: { name: string; hashes: string[]; counts: Map<string, number> }[] = []
  for (const name of names) {
    const store = new Store(net, { path: join(root, name, 'chain') })
    await store.open()
    const loaded = await store.loadChain()
    const blocks = (await store.finalBlocksFrom(1, loaded.root.height)).map((b) => decodeBlock(net, b))
    await store.close()
    const counts = new Map<string, number>()
    for (const b of blocks) for (const r of b.readings) counts.set(r.idHex, (counts.get(r.idHex) ?? 0) + 1)
    chains.push({ name, hashes: blocks.map((b) => b.hashHex), counts })
  }
  const shortest = Math.min(...chains.map((c) => c.hashes.length))
  const agree = chains.every((c) => c.hashes[shortest - 1] === chains[0].hashes[shortest - 1])
  if (!agree) problems.push('final chains differ')
  const lost = new Map(chains.map((c) => [c.name, [...accepted].filter((id) => c.counts.get(id) !== 1).length]))
  const dup = chains.some((c) => [...c.counts.values()].some((n) => n > 1))
  if ([...lost.values()].some((n) => n > 0)) problems.push(`readings not final once: ${JSON.stringify([...lost])}`)
  if (dup) problems.push('a reading appears twice in a final chain')
  if (refusals.length > 0) problems.push(`honest peers refused: ${refusals.slice(0, 5).join(' | ')}`)
  const slow = faults.filter((f) => (f.resumeSlots ?? 0) > 20)
  if (slow.length > 0)
    problems.push(`finality took more than 20 slots to resume after ${slow.map((f) => f.kind).join(', ')}`)
  const rss = [...rssMax.entries()]
  if (rss.some(([, mb]) => mb > RSS_LIMIT_MB)) problems.push(`RSS above ${RSS_LIMIT_MB} MB: ${JSON.stringify(rss)}`)

  const cpu = cpus()[0]?.model.trim() ?? 'unknown'
  const lines = [
    `# Reliability: chaos soak`,
    '',
    `\`npm run soak -- --minutes ${MINUTES}\` on ${new Date().toISOString().slice(0, 10)}, Node ${process.version},`,
    `${cpus().length} × ${cpu}, ${useNetns ? 'each peer on a network namespace of its own' : 'loopback (partitions skipped: needs root and iproute2)'}.`,
    `${PEERS} validators (stakes ${stakes.join(' / ')}), slot ${SLOT_MS} ms; ${skewed}'s clock 300 ms fast.`,
    '',
    `Result: **${problems.length === 0 ? 'pass' : 'FAIL'}**${problems.length === 0 ? '' : `: ${problems.join('; ')}`}`,
    '',
    '| what | value |',
    '| --- | --- |',
    `| duration | ${((Date.now() - t0) / 60_000).toFixed(1)} min |`,
    `| readings accepted (a \`reading\` event) | ${accepted.size} |`,
    `| not final exactly once, per peer | ${[...lost.values()].join(' / ')} |`,
    `| final height, per peer | ${chains.map((c) => c.hashes.length).join(' / ')} |`,
    `| final chains agree | ${agree ? 'yes' : 'NO'} |`,
    `| honest peers refused by honest peers | ${refusals.length} |`,
    `| RSS max per peer (MB) | ${names.map((n) => (rssMax.get(n) ?? 0).toFixed(0)).join(' / ')} |`,
    '',
    '| t (s) | fault | detail | slots until every live peer finalized again |',
    '| ---: | --- | --- | ---: |',
    ...faults.map((f) => `| ${(f.at / 1000).toFixed(0)} | ${f.kind} | ${f.detail} | ${f.resumeSlots} |`),
    '',
  ]
  mkdirSync(dirname(REPORT), { recursive: true })
  writeFileSync(REPORT, lines.join('\n'))
  // Every process's stderr and JSON events, kept for a failure (and for a stall seen once).
  const logs = join(dirname(REPORT), 'soak-logs')
  rmSync(logs, { recursive: true, force: true })
  mkdirSync(logs, { recursive: true })
  instances.forEach(({ name, peer }, k) => {
    const events = peer.events.filter((e) => e.event !== 'head').map((e) => JSON.stringify(e))
    writeFileSync(join(logs, `${String(k).padStart(2, '0')}-${name}.log`), `${peer.stderr}\n${events.join('\n')}\n`)
  })
  console.log(lines.join('\n'))
  console.log(`report written to ${REPORT}`)
}

const cleanup = () => {
  for (const { peer } of instances) peer.kill('SIGKILL')
  lab?.destroy()
  rmSync(root, { recursive: true, force: true })
}
process.on('SIGINT', () => {
  cleanup()
  process.exit(130)
})
try {
  await main()
} catch (err) {
  problems.push(`soak aborted: ${(err as Error).message}`)
  console.error(err)
} finally {
  cleanup()
}
if (problems.length > 0) {
  console.error(`soak FAILED:\n${problems.join('\n')}`)
  process.exit(1)
}
process.exit(0)
