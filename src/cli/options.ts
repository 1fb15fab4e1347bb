import { readFileSync } from 'node:fs'
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander'
import { configFromGenesis, GenesisError } from '../core/genesis.js'
import { type ChainConfig, DEFAULT_PARAMS } from '../core/params.js'
import type { LogFormat, LogLevel } from '../util/logger.js'
import { VERSION } from '../version.js'

export interface CliOptions {
  stake: number
  port?: number
  host: string
  bootstrap: string[]
  dataDir?: string
  name?: string
  ephemeral: boolean
  network: string
  slotMs: number
  mdns: boolean
  autoBpm?: number
  json: boolean
  logLevel: LogLevel
  /** --log-format: pretty (a terminal) or json (pino lines); default pretty on a terminal. */
  logFormat: LogFormat
  /** --log-file: append logs here instead of stderr. */
  logFile?: string
  /** --http: serve the API, /metrics and the dashboard here. */
  http?: { host: string; port: number }
  /** --http-host: more Host names the HTTP API answers to (besides localhost and its address). */
  httpHosts: string[]
  /** --checkpoint: a final block this peer will never contradict. */
  checkpoint?: { height: number; hashHex: string }
  /** --genesis: the genesis network of that file (else the open devnet of --network/--slot-ms). */
  genesis?: ChainConfig
}

/** The network of a `--genesis` file: read, parsed and checked, or one UsageError line. */
export function readGenesisFile(path: string): ChainConfig {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    throw new UsageError(`--genesis ${path}: cannot read it (${(err as NodeJS.ErrnoException).code ?? String(err)})`)
  }
  try {
    return configFromGenesis(JSON.parse(text))
  } catch (err) {
    if (err instanceof SyntaxError) throw new UsageError(`--genesis ${path}: not JSON (${err.message})`)
    if (err instanceof GenesisError) throw new UsageError(`--genesis ${path}: ${err.message}`)
    throw err
  }
}

/** `--checkpoint <height>:<hash>` (weak subjectivity: a block the user got from someone they trust). */
export function parseCheckpoint(value: string): { height: number; hashHex: string } {
  const m = /^(\d{1,15}):([0-9a-fA-F]{64})$/.exec(value.trim())
  if (m === null || Number(m[1]) < 1)
    throw new UsageError(`--checkpoint ${value}: expected <height>:<block hash>, e.g. 1200:9f2c... (64 hex digits)`)
  return { height: Number(m[1]), hashHex: m[2].toLowerCase() }
}

/** `--http` value: `port`, `:port` or `host:port` (IPv4, [IPv6] or localhost); host 127.0.0.1 by default. */
export function parseHttpAddress(value: string): { host: string; port: number } {
  const m = /^(?:(\d{1,3}(?:\.\d{1,3}){3}|\[[0-9a-fA-F:]+\]|localhost)?:)?(\d{1,5})$/.exec(value.trim())
  const port = m === null ? Number.NaN : Number(m[2])
  if (m === null || port > 65535) {
    throw new UsageError(`--http ${value}: expected host:port or port (e.g. 127.0.0.1:8080 or 8080)`)
  }
  return { host: (m[1] ?? '127.0.0.1').replace(/^\[|\]$/g, ''), port }
}

/**
 * Parse a subcommand's argv (health, genesis, id): undefined when parsed, else its exit code (0
 * after --help, 2 after commander printed a usage error).
 */
export function parseSubcommand(cmd: Command, argv: string[]): number | undefined {
  try {
    cmd.exitOverride().parse(argv, { from: 'user' })
    return undefined
  } catch (err) {
    return err instanceof CommanderError && err.exitCode === 0 ? 0 : 2
  }
}

/** A usage error: exit code 2, one line on stderr. */
export class UsageError extends Error {
  override name = 'UsageError'
}

function intArg(name: string, min: number, max: number) {
  return (value: string): number => {
    if (!/^\d+$/.test(value.trim())) throw new InvalidArgumentError(`${name} must be a whole number, got "${value}"`)
    const n = Number(value)
    if (!Number.isSafeInteger(n) || n < min || n > max)
      throw new InvalidArgumentError(`${name} must be from ${min} to ${max}, got ${value}`)
    return n
  }
}

/** Repeatable, and comma-separated (so one environment variable can hold several). */
const collect = (value: string, previous: string[]): string[] => [
  ...previous,
  ...value
    .split(',')
    .map((v) => v.trim())
    .filter((v) => v !== ''),
]

/** The environment variable of a flag: --slot-ms -> POS_PEER_SLOT_MS. */
export const envName = (flag: string) => `POS_PEER_${flag.replace(/^--/, '').replace(/-/g, '_').toUpperCase()}`

export function buildCommand(): Command {
  const options = [
    new Option('--stake <n>', 'tokens to stake (0 = observer: syncs, relays, submits readings, never wins)')
      .default(0)
      .argParser(intArg('--stake', 0, DEFAULT_PARAMS.maxStake)),
    new Option('--port <n>', 'TCP port to listen on (default: 9090, or a free port when 9090 is taken)').argParser(
      intArg('--port', 0, 65535),
    ),
    new Option('--host <ip>', 'address to listen on').default('127.0.0.1'),
    new Option('--bootstrap <addr>', 'peer to join: multiaddr or host:port (repeatable, or comma-separated)')
      .default([])
      .argParser(collect),
    new Option('--data-dir <dir>', 'keep the chain and identity here'),
    new Option('--name <profile>', 'use the named profile under ~/.pos-peer (keeps one identity per name)'),
    new Option('--ephemeral', 'keep everything in memory (a new identity each run)').default(false),
    new Option(
      '--genesis <file>',
      'join the genesis network of this file (stake backed by tokens; see pos-peer genesis)',
    ),
    new Option('--network <name>', 'network name (part of the network id)').default(DEFAULT_PARAMS.name),
    new Option('--slot-ms <n>', 'slot length in ms (part of the network id)')
      .default(DEFAULT_PARAMS.slotMs)
      .argParser(intArg('--slot-ms', 50, 600_000)),
    new Option('--mdns', 'also find peers on the local network with mDNS (multicast)').default(false),
    new Option('--auto-bpm [ms]', 'generate a plausible reading every ms (default 3000)').argParser(
      intArg('--auto-bpm', 100, 3_600_000),
    ),
    new Option('--http <[host:]port>', 'serve the dashboard, the JSON API and /metrics (host defaults to 127.0.0.1)'),
    new Option('--http-host <name>', 'another Host name the HTTP API answers to (repeatable)')
      .default([])
      .argParser(collect),
    new Option(
      '--checkpoint <height:hash>',
      'a final block (from someone you trust) this peer never contradicts: refuses chains without it',
    ),
    new Option('--json', 'one JSON object per line on stdout (scriptable mode)').default(false),
    new Option('--log-level <level>', "log level (debug also shows libp2p's own debug output)")
      .choices(['debug', 'info', 'warn', 'error', 'silent'])
      .default('warn'),
    new Option(
      '--log-format <format>',
      'pretty or json (pino lines); default: pretty on a terminal, else json',
    ).choices(['pretty', 'json']),
    new Option('--log-file <path>', 'append logs to this file instead of stderr'),
  ]
  const cmd = new Command('pos-peer')
    .description('A proof-of-stake blockchain peer: gossip heart-rate readings, win blocks by stake-weighted lottery.')
    .version(VERSION, '-v, --version')
  for (const o of options) cmd.addOption(o.env(envName(o.long ?? '')))
  return cmd
    .addHelpText(
      'after',
      '\nCommands:\n  pos-peer genesis --account <id>=<tokens> ... --out <file>   write a genesis file (a network with tokens)\n  pos-peer id [--data-dir <dir> | --name <profile>]          print (and create) a peer id, for a genesis file\n  pos-peer health --data-dir <dir>   exit 0 when the peer of that data dir is synced and connected\n\nEvery option can also be set by its environment variable, e.g. POS_PEER_STAKE=100 or\nPOS_PEER_BOOTSTRAP=host1:9090,host2:9090 (a flag on the command line wins).',
    )
    .showHelpAfterError('(run pos-peer --help for all options)')
    .exitOverride()
}

/** Parse argv (without node and script) into options; throws UsageError or commander's help/version exits. */
export function parseOptions(argv: string[]): CliOptions {
  const cmd = buildCommand()
  cmd.parse(argv, { from: 'user' })
  const o = cmd.opts()
  const pinned = [o.dataDir !== undefined, o.name !== undefined, o.ephemeral === true].filter(Boolean).length
  if (pinned > 1) throw new UsageError('use only one of --data-dir, --name and --ephemeral')
  if (o.name !== undefined && !/^[A-Za-z0-9_-]{1,64}$/.test(o.name))
    throw new UsageError('--name takes letters, digits, "-" and "_" (up to 64)')
  if (!/^[a-z0-9][a-z0-9-]{0,31}$/.test(o.network))
    throw new UsageError('--network takes 1-32 characters of a-z, 0-9 and "-"')
  if (!/^[0-9a-fA-F.:]+$/.test(o.host)) throw new UsageError(`--host must be an IP address, got "${o.host}"`)
  const genesis = o.genesis === undefined ? undefined : readGenesisFile(o.genesis)
  if (genesis !== undefined) {
    const set = ['network', 'slotMs'].filter((k) => cmd.getOptionValueSource(k) !== 'default')
    if (set.length > 0)
      throw new UsageError('--genesis sets the network name and slot length: drop --network and --slot-ms')
  }
  return {
    genesis,
    stake: o.stake,
    port: o.port,
    host: o.host,
    bootstrap: o.bootstrap,
    dataDir: o.dataDir,
    name: o.name,
    ephemeral: o.ephemeral,
    network: genesis?.params.name ?? o.network,
    slotMs: genesis?.params.slotMs ?? o.slotMs,
    mdns: o.mdns,
    autoBpm: o.autoBpm === true ? 3000 : o.autoBpm,
    json: o.json,
    logLevel: o.logLevel,
    logFormat: o.logFormat ?? (process.stderr.isTTY === true ? 'pretty' : 'json'),
    logFile: o.logFile,
    http: o.http === undefined ? undefined : parseHttpAddress(o.http),
    httpHosts: o.httpHost,
    checkpoint: o.checkpoint === undefined ? undefined : parseCheckpoint(o.checkpoint),
  }
}
