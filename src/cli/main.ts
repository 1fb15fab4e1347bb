import { createInterface } from 'node:readline'
import { Command, CommanderError, Option } from 'commander'
import type { ApiServer, PeerMetrics } from '../api/index.js'
import { PosError } from '../core/errors.js'
import { makeChainConfig } from '../core/params.js'
import { NetworkConfigError, PortInUseError } from '../network/addresses.js'
import { CheckpointError, stakeTooHigh } from '../node/chain-service.js'
import { Peer, type PeerOptions } from '../node/peer.js'
import { StoreError } from '../storage/errors.js'
import { type AppLogger, createAppLogger } from '../util/logger.js'
import { checkHealth, writeHealth } from './health.js'
import { type CliOptions, parseOptions, parseSubcommand, UsageError } from './options.js'
import { HeldOutput } from './output.js'
import { type ProfileMemory, profileDir, profilesFor, recallProfile, rememberProfile } from './profile.js'

const EXIT_RUNTIME = 1
const EXIT_USAGE = 2
const SHUTDOWN_MS = 5000

/** A plausible resting-to-active heart rate: a slow random walk between 55 and 140. */
function bpmGenerator(): () => number {
  let bpm = 70
  return () => {
    bpm = Math.min(140, Math.max(55, bpm + Math.round((Math.random() - 0.5) * 8)))
    return bpm
  }
}

/**
 * POS_PEER_CLOCK_OFFSET_MS: run with a clock this many ms off (a testing knob for clock-skew
 * drills such as `npm run soak`; a real skewed clock needs no help).
 */
function clockFromEnv(): (() => number) | undefined {
  const raw = process.env.POS_PEER_CLOCK_OFFSET_MS
  if (raw === undefined || raw === '') return undefined
  const offset = Number(raw)
  if (!Number.isSafeInteger(offset))
    throw new UsageError(`POS_PEER_CLOCK_OFFSET_MS must be a whole number, got "${raw}"`)
  return () => Date.now() + offset
}

/** The data dir a peer opened, how it was chosen, and what it remembered of its last run. */
export interface OpenedProfile {
  readonly dir: string
  readonly how: 'data-dir' | 'name' | 'default'
  readonly last?: ProfileMemory
}

async function startPeer(
  o: CliOptions,
  logger: AppLogger,
  metrics?: PeerMetrics,
  onCreated?: (peer: Peer) => void,
): Promise<{ peer: Peer; profile?: OpenedProfile }> {
  const net = o.genesis ?? makeChainConfig({ name: o.network, slotMs: o.slotMs })
  const base: Omit<PeerOptions, 'dataDir'> = {
    net,
    stake: o.stake,
    host: o.host,
    port: o.port,
    bootstrap: o.bootstrap,
    mdns: o.mdns,
    log: logger.log,
    libp2pLogger: logger.libp2p,
    metrics: metrics?.libp2p(),
    checkpoint: o.checkpoint,
    now: clockFromEnv(),
    onCreated,
  }
  const open = async (dir: string, how: OpenedProfile['how']) => {
    const last = recallProfile(dir)
    const peer = await Peer.start({ ...base, dataDir: dir })
    rememberProfile(dir, { stake: o.stake, lastRun: new Date().toISOString() })
    return { peer, profile: { dir, how, last } }
  }
  if (o.ephemeral) return { peer: await Peer.start(base) }
  if (o.dataDir !== undefined) return open(o.dataDir, 'data-dir')
  if (o.name !== undefined) return open(profileDir(o.network, o.name), 'name')
  // No flag: a free default profile, preferring one that last ran with this --stake, so several
  // terminals just work and keep their identities across restarts in any order.
  for (const dir of profilesFor(o.network, o.stake)) {
    try {
      return await open(dir, 'default')
    } catch (err) {
      if (err instanceof StoreError && err.code === 'LOCKED') continue
      throw err
    }
  }
  throw new StoreError(
    'LOCKED',
    profileDir(o.network, '*'),
    'all 64 default profiles are in use: pass --name or --data-dir',
  )
}

/** One line about the identity opened: which profile, why, and its stake last time. */
export function profileLine(profile: OpenedProfile | undefined): string {
  if (profile === undefined) return 'in memory (--ephemeral): a new identity this run'
  const last = profile.last === undefined ? 'a new identity' : `last ran with stake ${profile.last.stake}`
  const why =
    profile.how === 'default'
      ? 'a free default profile; --name <profile> keeps one identity per name'
      : `--${profile.how}`
  return `${profile.dir} (${why}), ${last}`
}

/** Feed BPM lines from a non-TTY stdin; a bad line is a warning and is skipped. */
function readStdinLines(peer: Peer, warn: (msg: string) => void): void {
  const rl = createInterface({ input: process.stdin })
  rl.on('line', (line) => {
    const text = line.trim()
    if (text === '') return
    if (!/^-?\d{1,15}$/.test(text)) return warn(`not a BPM reading: "${text.slice(0, 40)}" (expected a whole number)`)
    peer.submitReading(Number(text)).catch((err: Error) => warn(err.message))
  })
}

/** `pos-peer health [--data-dir D | --name P]`: exit 0 when the peer there is synced and connected. */
function runHealth(argv: string[]): number {
  const cmd = new Command('pos-peer health')
    .description("check the running peer of a data dir: synced, connected, reporting (a container's HEALTHCHECK)")
    .addOption(new Option('--data-dir <dir>', 'the data dir of the peer to check').env('POS_PEER_DATA_DIR'))
    .addOption(new Option('--name <profile>', 'the named profile of the peer to check').env('POS_PEER_NAME'))
    .addOption(
      new Option('--network <name>', 'its network name (with --name)').default('devnet').env('POS_PEER_NETWORK'),
    )
  const exit = parseSubcommand(cmd, argv)
  if (exit !== undefined) return exit
  const h = cmd.opts<{ dataDir?: string; name?: string; network: string }>()
  const dir = h.dataDir ?? (h.name === undefined ? undefined : profileDir(h.network, h.name))
  if (dir === undefined) {
    process.stderr.write('pos-peer health: pass --data-dir or --name (the peer to check)\n')
    return EXIT_USAGE
  }
  const { ok, line } = checkHealth(dir, Date.now())
  ;(ok ? process.stdout : process.stderr).write(`${line}\n`)
  return ok ? 0 : EXIT_RUNTIME
}

export async function main(argv: string[]): Promise<number> {
  if (argv[0] === 'health') return runHealth(argv.slice(1))
  if (argv[0] === 'genesis') return (await import('./genesis.js')).runGenesis(argv.slice(1))
  if (argv[0] === 'id') return (await import('./genesis.js')).runId(argv.slice(1))
  let o: CliOptions
  try {
    o = parseOptions(argv)
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE
    if (err instanceof UsageError) {
      process.stderr.write(`pos-peer: ${err.message}\n`)
      return EXIT_USAGE
    }
    throw err
  }
  let logger: AppLogger
  try {
    logger = createAppLogger({
      level: o.logLevel,
      format: o.logFormat,
      file: o.logFile,
      color: process.stderr.isTTY === true,
    })
  } catch (err) {
    process.stderr.write(`pos-peer: --log-file ${o.logFile}: ${(err as Error).message}\n`)
    return EXIT_USAGE
  }
  const log = logger.log
  const interactive = !o.json && process.stdin.isTTY === true && process.stdout.isTTY === true
  const out = (line: string) => process.stdout.write(`${line}\n`)
  const warn = (message: string) =>
    o.json
      ? out(JSON.stringify({ event: 'warning', time: new Date().toISOString(), message }))
      : process.stderr.write(`warning: ${message}\n`)

  let peer: Peer
  let profile: OpenedProfile | undefined
  let api: ApiServer | undefined
  // The HTTP API (and fastify) is loaded only when asked for.
  const http = o.http === undefined ? undefined : await import('../api/index.js')
  const metrics = http === undefined ? undefined : new http.PeerMetrics()
  // The peer's events are written from its first one, held back until the lines that open the
  // output (`ready`, the header) are out. (Attached once the peer had started, the events of its
  // start were lost: the first connection, blocks synced or imported meanwhile.)
  const early = interactive ? undefined : new HeldOutput(o.json ? 'json' : 'text', out)
  try {
    ;({ peer, profile } = await startPeer(o, logger, metrics, early?.attach))
  } catch (err) {
    return reportStartError(err, o)
  }
  const refusal = await stakeRefusal(peer, o.stake)
  if (refusal !== undefined) {
    await peer.stop({ graceful: false })
    process.stderr.write(`pos-peer: ${refusal}\n`)
    return EXIT_USAGE
  }
  if (http !== undefined && o.http !== undefined) {
    try {
      api = await http.ApiServer.start(peer, { ...o.http, metrics, allowedHosts: o.httpHosts })
      metrics?.attach(peer)
    } catch (err) {
      await peer.stop({ graceful: false })
      return reportStartError(err, o)
    }
  }

  let stopping = false
  const shutdown = async (signal: string) => {
    if (stopping) {
      process.stderr.write('pos-peer: second signal, exiting now\n')
      process.exit(130)
    }
    stopping = true
    // Said at the default level: a stop that takes a few seconds must not look like a hang.
    const say = (message: string) =>
      o.json
        ? out(JSON.stringify({ event: 'stopping', time: new Date().toISOString(), message }))
        : process.stderr.write(`${message}\n`)
    const timer = setTimeout(() => {
      process.stderr.write('pos-peer: shutdown took too long, exiting\n')
      process.exit(EXIT_RUNTIME)
    }, SHUTDOWN_MS)
    await api?.close().catch(() => {})
    const slots = 3
    const result = await peer.stop({
      graceful: true,
      leaveSlots: slots,
      onLeaving: () =>
        say(`${signal}: leaving: stake 0 announced, waiting up to ${slots} slots for the network to take it`),
    })
    say(
      result.leave === 'seen'
        ? 'left cleanly: another validator built on our leave'
        : result.leave === 'timeout'
          ? `gave up after ${slots} slots: our stake stops counting when it expires`
          : `${signal}: stopped`,
    )
    clearTimeout(timer)
    process.exit(0)
  }
  process.on('SIGINT', () => void shutdown('SIGINT'))
  process.on('SIGTERM', () => void shutdown('SIGTERM'))
  // `pos-peer --json | head`: the reader went away; leave quietly instead of crashing on EPIPE.
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (stopping) return
    if (err.code === 'EPIPE') void shutdown('stdout closed')
    else log('error', `stdout: ${err.message}`)
  })

  if (o.json) {
    out(
      JSON.stringify({
        event: 'ready',
        time: new Date().toISOString(),
        peerId: peer.peerId,
        addrs: peer.listenAddrs(),
        network: peer.config.idHex,
        ledger: peer.config.ledger,
        stake: o.stake,
        dataDir: peer.dataDir ?? null,
        http: api?.url ?? null,
      }),
    )
  }
  if (peer.dataDir !== undefined) writeHealth(peer, peer.dataDir)
  // Started before the menu: with a terminal the menu would otherwise take over first.
  if (o.autoBpm !== undefined) {
    const next = bpmGenerator()
    const timer = setInterval(() => peer.submitReading(next()).catch((err: Error) => warn(err.message)), o.autoBpm)
    timer.unref()
  }
  if (interactive) {
    const { runInteractive } = await import('./interactive.js')
    await runInteractive(peer, o, { httpUrl: api?.url, profile: profileLine(profile) })
    await shutdown('quit')
    return 0
  }
  if (!o.json) {
    out(`pos-peer ${peer.peerId} on network ${o.network} (${peer.config.idHex.slice(0, 16)}), stake ${o.stake}`)
    out(`listening on ${peer.listenAddrs().join(', ')}`)
    if (peer.config.ledger) out(`genesis network: ${peer.funds().free} free, ${peer.funds().stakeLimit} stakeable`)
    out(`data ${profileLine(profile)}`)
    if (api !== undefined) out(`dashboard on ${api.url}/`)
    if (o.autoBpm !== undefined) out(`auto-bpm: a reading every ${o.autoBpm} ms`)
  }
  early?.release()
  if (process.stdin.isTTY !== true) readStdinLines(peer, warn)
  // Runs until a signal.
  await new Promise(() => {})
  return 0
}

/**
 * In a genesis network, `--stake` beyond what this account holds is refused at start. The local
 * chain may be behind (tokens received lately): the check waits up to 5 s for the peer to sync
 * before it says no.
 */
async function stakeRefusal(peer: Peer, stake: number): Promise<string | undefined> {
  const over = () => {
    const limit = peer.funds().stakeLimit
    return limit !== undefined && stake > limit ? limit : undefined
  }
  for (let waited = 0; over() !== undefined && !peer.synced() && waited < 5000; waited += 200) await sleep(200)
  const limit = over()
  if (limit !== undefined) return `--stake ${stake}: ${stakeTooHigh(stake, limit)} (address ${peer.peerId})`
  // Held back at start (the chain did not show the tokens yet): announced now.
  if (peer.stake !== stake) await peer.setStake(stake)
  return undefined
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms))

function reportStartError(err: unknown, o: CliOptions): number {
  const debug = o.logLevel === 'debug'
  if (err instanceof NetworkConfigError || err instanceof UsageError) {
    process.stderr.write(`pos-peer: ${err.message}\n`)
    return EXIT_USAGE
  }
  if (
    err instanceof StoreError ||
    err instanceof PortInUseError ||
    err instanceof PosError ||
    err instanceof CheckpointError ||
    (err as Error).name === 'HttpConfigError'
  ) {
    const e = err as Error
    process.stderr.write(`pos-peer: ${e.message}\n`)
    if (debug) process.stderr.write(`${e.stack}\n`)
    return EXIT_RUNTIME
  }
  const e = err as Error
  process.stderr.write(
    `pos-peer: could not start: ${e.message ?? String(err)}${debug ? '' : ' (run with --log-level debug for details)'}\n`,
  )
  if (debug) process.stderr.write(`${e.stack}\n`)
  return EXIT_RUNTIME
}
