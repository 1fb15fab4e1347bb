import { existsSync, writeFileSync } from 'node:fs'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { Command, Option } from 'commander'
import { toHex } from '../core/bytes.js'
import { GenesisError, genesisDoc, parseAccountArg } from '../core/genesis.js'
import { DEFAULT_PARAMS, makeChainConfig } from '../core/params.js'
import { StoreError } from '../storage/errors.js'
import { loadOrCreateIdentity } from '../storage/identity.js'
import { envName, parseSubcommand, readGenesisFile, UsageError } from './options.js'
import { profileDir } from './profile.js'

const EXIT_USAGE = 2

const fail = (message: string): number => {
  process.stderr.write(`${message}\n`)
  return EXIT_USAGE
}

/**
 * `pos-peer genesis --account <id>=<tokens> ... [--network N] [--slot-ms MS] [--genesis-time ISO] [--reading-fee T]
 * [--out FILE]`: write a genesis file (docs/PROTOCOL.md section 6) and say its network id.
 */
export async function runGenesis(argv: string[]): Promise<number> {
  const cmd = new Command('pos-peer genesis')
    .description('write a genesis file: a network whose stake is backed by tokens (give it to every peer: --genesis)')
    .addOption(
      new Option('--account <id=tokens>', 'an address (peer id, from pos-peer id) and its tokens (repeatable)')
        .default([])
        .argParser((v: string, prev: string[]) => [...prev, v]),
    )
    .addOption(
      new Option(
        '--account-dir <dir=tokens>',
        "a peer's data dir (its key is created there if needed) and its tokens (repeatable): for a one-shot setup",
      )
        .default([])
        .argParser((v: string, prev: string[]) => [...prev, v]),
    )
    .addOption(new Option('--network <name>', 'network name').default('mynet'))
    .addOption(new Option('--slot-ms <n>', 'slot length in ms').default(String(DEFAULT_PARAMS.slotMs)))
    .addOption(new Option('--genesis-time <iso>', 'time of slot 0 (ISO 8601; default: now, to the second)'))
    .addOption(
      new Option('--reading-fee <tokens>', 'tokens burned from the author of each reading in a block').default('0'),
    )
    .addOption(new Option('--out <file>', 'write here (default: standard output)'))
    .addOption(new Option('--force', 'overwrite --out if it exists').default(false))
    .addOption(
      new Option('--if-missing', 'leave an existing --out as it is and exit 0 (a setup run on every start)').default(
        false,
      ),
    )
  const exit = parseSubcommand(cmd, argv)
  if (exit !== undefined) return exit
  const o = cmd.opts<{
    account: string[]
    accountDir: string[]
    ifMissing: boolean
    network: string
    slotMs: string
    readingFee: string
    genesisTime?: string
    out?: string
    force: boolean
  }>()
  if (o.ifMissing && o.out !== undefined && existsSync(o.out)) {
    process.stdout.write(`${o.out} exists: kept as it is (--if-missing)\n`)
    return 0
  }
  for (const arg of o.accountDir) {
    const m = /^(.+)=(\d{1,16})$/.exec(arg)
    if (m === null) return fail(`pos-peer genesis: --account-dir ${arg}: expected <data dir>=<tokens>`)
    try {
      const key = await loadOrCreateIdentity(m[1])
      o.account.push(`${peerIdFromPrivateKey(key).toString()}=${m[2]}`)
    } catch (err) {
      if (err instanceof StoreError) return fail(`pos-peer genesis: ${err.message}`)
      throw err
    }
  }
  if (o.account.length === 0)
    return fail('pos-peer genesis: give at least one --account <peer id>=<tokens> (or --account-dir <dir>=<tokens>)')
  const time = o.genesisTime === undefined ? Math.floor(Date.now() / 1000) * 1000 : Date.parse(o.genesisTime)
  if (!Number.isSafeInteger(time) || time < 0)
    return fail(`pos-peer genesis: --genesis-time ${o.genesisTime}: expected ISO 8601, e.g. 2026-12-01T12:00:00Z`)
  if (!/^\d{1,6}$/.test(o.slotMs)) return fail(`pos-peer genesis: --slot-ms must be a whole number, got ${o.slotMs}`)
  if (!/^\d{1,9}$/.test(o.readingFee))
    return fail(`pos-peer genesis: --reading-fee must be a whole number of tokens, got ${o.readingFee}`)
  let text: string
  let summary: string
  try {
    const allocations = new Map<string, number>()
    for (const arg of o.account) {
      const [key, tokens] = parseAccountArg(arg)
      if (allocations.has(toHex(key))) throw new GenesisError(`--account ${arg}: that address is given twice`)
      allocations.set(toHex(key), tokens)
    }
    const net = makeChainConfig(
      { name: o.network, genesisTime: time, slotMs: Number(o.slotMs), readingFee: Number(o.readingFee) },
      allocations,
    )
    text = `${JSON.stringify(genesisDoc(net), null, 2)}\n`
    const total = [...allocations.values()].reduce((a, b) => a + b, 0)
    summary = `network ${o.network} (id ${net.idHex.slice(0, 16)}), ${allocations.size} account(s), ${total} tokens, genesis ${new Date(time).toISOString()}${net.params.readingFee > 0 ? `, reading fee ${net.params.readingFee}` : ''}`
  } catch (err) {
    if (err instanceof GenesisError || err instanceof RangeError) return fail(`pos-peer genesis: ${err.message}`)
    throw err
  }
  if (o.out === undefined) {
    process.stdout.write(text)
    process.stderr.write(`${summary}\n`)
    return 0
  }
  try {
    writeFileSync(o.out, text, { flag: o.force ? 'w' : 'wx' })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    return fail(
      code === 'EEXIST'
        ? `pos-peer genesis: ${o.out} exists (another network's file?): pass --force to replace it`
        : `pos-peer genesis: cannot write ${o.out} (${code ?? String(err)})`,
    )
  }
  process.stdout.write(
    `wrote ${o.out}: ${summary}\nstart each peer with: npx pos-peer --genesis ${o.out} --stake <n>\n`,
  )
  return 0
}

/** `pos-peer id [--data-dir D | --name P] [--network N | --genesis F]`: the peer id of that identity. */
export async function runId(argv: string[]): Promise<number> {
  const cmd = new Command('pos-peer id')
    .description('print the peer id (address) of a data dir or profile, creating its key if needed')
    .addOption(new Option('--data-dir <dir>', 'the data dir').env(envName('--data-dir')))
    .addOption(new Option('--name <profile>', 'the named profile').env(envName('--name')))
    .addOption(new Option('--network <name>', 'its network name (with --name)').default('devnet'))
    .addOption(new Option('--genesis <file>', 'its genesis file (with --name: the network name is taken from it)'))
  const exit = parseSubcommand(cmd, argv)
  if (exit !== undefined) return exit
  const o = cmd.opts<{ dataDir?: string; name?: string; network: string; genesis?: string }>()
  let network = o.network
  if (o.genesis !== undefined) {
    try {
      network = readGenesisFile(o.genesis).params.name
    } catch (err) {
      if (err instanceof UsageError) return fail(`pos-peer id: ${err.message}`)
      throw err
    }
  }
  const dir = o.dataDir ?? (o.name === undefined ? undefined : profileDir(network, o.name))
  if (dir === undefined || (o.dataDir !== undefined && o.name !== undefined))
    return fail('pos-peer id: pass one of --data-dir or --name (the identity to print)')
  try {
    const key = await loadOrCreateIdentity(dir)
    process.stdout.write(`${peerIdFromPrivateKey(key).toString()}\n`)
    return 0
  } catch (err) {
    if (err instanceof StoreError) {
      process.stderr.write(`pos-peer id: ${err.message}\n`)
      return 1
    }
    throw err
  }
}
