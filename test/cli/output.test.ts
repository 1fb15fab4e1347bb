import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { afterEach, describe, expect, it } from 'vitest'
import { HeldOutput } from '../../src/cli/output.js'
import { makeChainConfig } from '../../src/core/params.js'
import { Peer, type PeerEvents } from '../../src/node/peer.js'
import { TypedEmitter } from '../../src/util/emitter.js'
import { BIN, CliPeer, killAll, NODE22, runCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/peers.js'
import { tempDirs } from '../helpers/tempdirs.js'

const procs: CliPeer[] = []
const stops: (() => void)[] = []
const temp = tempDirs('out')
const ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/

afterEach(async () => {
  for (const s of stops.splice(0)) s()
  await killAll(procs)
  await temp.removeAll()
})

function start(args: string[], env: NodeJS.ProcessEnv = {}): CliPeer {
  const p = new CliPeer(args, env)
  procs.push(p)
  return p
}

describe('the output of a starting peer', () => {
  it('events of the start are held until release, in order, then written as they come; past the bound, counted', () => {
    const events = new TypedEmitter<PeerEvents>()
    const peer = { events } as unknown as Peer
    const lines: string[] = []
    const held = new HeldOutput('json', (l) => lines.push(l), 3)
    const warn = (message: string) => events.emit('warning', { message })
    held.attach(peer)
    for (const m of ['one', 'two', 'three', 'four', 'five']) warn(m)
    lines.push('ready')
    expect(lines).toEqual(['ready'])
    held.release()
    warn('six')
    const shown = lines.map((l) => (l === 'ready' ? l : (JSON.parse(l) as { message: string }).message))
    expect(shown).toEqual(['ready', 'one', 'two', 'three', '2 event(s) of the start not shown (more than 3)', 'six'])
    // A profile that could not be opened: the next peer tried replaces it, nothing of the first is kept.
    const next = new HeldOutput('json', (l) => lines.push(l))
    const other = new TypedEmitter<PeerEvents>()
    next.attach(peer)
    warn('from the first')
    next.attach({ events: other } as unknown as Peer)
    warn('first again')
    other.emit('warning', { message: 'from the second' })
    lines.length = 0
    next.release()
    expect(lines.map((l) => (JSON.parse(l) as { message: string }).message)).toEqual(['from the second'])
  })

  it('Peer.start hands the peer to onCreated before it starts anything', async () => {
    let created: Peer | undefined
    let then = ''
    const peer = await Peer.start({
      net: makeChainConfig({ name: 'heldtest' }),
      stake: 0,
      host: '127.0.0.1',
      port: 0,
      onCreated: (p) => {
        created = p
        try {
          then = `listening on ${p.listenAddrs().length}`
        } catch {
          then = 'not started'
        }
      },
    })
    try {
      expect(created).toBe(peer)
      expect(then).toBe('not started')
    } finally {
      await peer.stop({ graceful: false })
    }
  })
})

describe('what pos-peer prints', () => {
  it('--json: flags from POS_PEER_* variables; every event, and every reading in it, has an ISO 8601 time', async () => {
    const env = { POS_PEER_NETWORK: 'outtest', POS_PEER_SLOT_MS: '300', POS_PEER_PORT: '0', POS_PEER_EPHEMERAL: '1' }
    const logFile = `${await temp.make()}/a.log`
    const a = start(['--log-level', 'debug', '--log-format', 'json', '--log-file', logFile], {
      ...env,
      POS_PEER_STAKE: '17',
    })
    const ready = await a.ready()
    expect(ready.stake).toBe(17)
    const b = start([], { ...env, POS_PEER_STAKE: '5', POS_PEER_BOOTSTRAP: `${a.addr},127.0.0.1:1` })
    await b.ready()
    a.send('72')
    b.send('81')
    await waitFor(
      () => a.finalReadingBpms().length >= 2 && b.of('peer:connect').length > 0,
      30_000,
      'two readings final',
    )
    // `ready` opens the output; b's connection to a follows it.
    const order = b.events.map((e) => (e.event === 'peer:connect' && e.peerId === ready.peerId ? 'a' : e.event))
    expect(order.indexOf('ready')).toBe(0)
    expect(order.indexOf('a')).toBeGreaterThan(0)
    const events = [...a.events, ...b.events]
    expect(events.filter((e) => e.event === 'non-json-line')).toEqual([])
    for (const e of events) expect(e.time, JSON.stringify(e)).toMatch(ISO)
    const readings = [...a.of('reading'), ...a.of('block').flatMap((e) => e.readings as { time: unknown }[])]
    expect(readings.length).toBeGreaterThanOrEqual(2)
    for (const r of readings) expect(r.time).toMatch(ISO)
    // --log-level debug: our lines and libp2p's own debug output, as pino JSON lines in one file.
    const logLines = readFileSync(logFile, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { level: number; msg: string; lib?: string })
    expect(logLines.some((l) => l.lib === 'libp2p' && /libp2p:/.test(l.msg))).toBe(true)
    expect(logLines.some((l) => l.lib === undefined && /listening on/.test(l.msg))).toBe(true)
  }, 60_000)

  it('pos-peer health: no report, alone, then synced and connected', async () => {
    const dirA = await temp.make()
    const dirB = await temp.make()
    const health = async (dir: string) => runCli(['health', '--data-dir', dir])
    const none = await health(dirA)
    expect(none.code).toBe(1)
    expect(none.stderr).toMatch(/no health\.json/)
    const a = start(['--network', 'healthtest', '--slot-ms', '300', '--port', '0', '--data-dir', dirA, '--stake', '10'])
    await a.ready()
    await waitFor(async () => /no peers connected/.test((await health(dirA)).stderr), 20_000, 'alone: unhealthy', 500)
    const b = start([
      '--network',
      'healthtest',
      '--slot-ms',
      '300',
      '--port',
      '0',
      '--data-dir',
      dirB,
      '--bootstrap',
      a.addr,
    ])
    await b.ready()
    for (const dir of [dirA, dirB])
      await waitFor(async () => (await health(dir)).code === 0, 30_000, `${dir} healthy`, 500)
    expect((await health(dirB)).stdout).toMatch(/healthy: synced, head #\d+, final #\d+, 1 peer/)
    // The image's HEALTHCHECK is this command, and the image builds no native code.
    const dockerfile = readFileSync('Dockerfile', 'utf8')
    expect(dockerfile).toMatch(
      /HEALTHCHECK[^\n]*\n\s*CMD \["node", "\/app\/bin\/pos-peer", "health", "--data-dir", "\/data"\]/,
    )
    expect(dockerfile).not.toMatch(/g\+\+|build-essential/)
  }, 90_000)

  it('text mode: a late joiner shows sync progress and "Synced", not one line per old block', async () => {
    const net = ['--network', 'synctext', '--slot-ms', '100', '--port', '0']
    // Readings keep it making blocks (an idle network goes quiet).
    const a = start([...net, '--stake', '10', '--ephemeral', '--auto-bpm', '100'])
    await a.ready()
    await waitFor(() => a.of('block').length >= 150, 60_000, '150 blocks on the first peer')
    let out = ''
    const child = spawn(NODE22, [BIN, ...net, '--ephemeral', '--bootstrap', a.addr], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
    })
    stops.push(() => child.kill('SIGKILL'))
    await waitFor(() => /Synced to #\d+/.test(out), 30_000, 'Synced line')
    await waitFor(() => /#\d+ final/.test(out), 30_000, 'a live final block')
    expect(out).toMatch(/Syncing [\d,]+ \/ [\d,]+ \([\d,]+ blocks\/s, \d+ peers\)/)
    const synced = Number(/Synced to #([\d,]+)/.exec(out)?.[1].replace(/,/g, ''))
    expect(synced).toBeGreaterThanOrEqual(150)
    // Old blocks are not announced one by one: at most the few within the catch-up margin.
    const oldLines = [...out.matchAll(/^#(\d+) won by/gm)].filter((m) => Number(m[1]) < synced - 10)
    expect(oldLines.length).toBeLessThan(5)
  }, 120_000)
})
