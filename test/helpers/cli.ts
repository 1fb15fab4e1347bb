import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { waitFor } from './peers.js'

export const NODE22 = join(process.cwd(), 'node_modules', '.bin', 'node')
export const BIN = join(process.cwd(), 'bin', 'pos-peer')

export interface JsonEvent {
  event: string
  [k: string]: unknown
}

/** A real `pos-peer --json` process; collects its stdout events. */
export class CliPeer {
  readonly events: JsonEvent[] = []
  readonly child: ChildProcessWithoutNullStreams
  stderr = ''
  exitCode: number | null | undefined = undefined
  private buf = ''

  /** `wrap`: a command prefix to run it under, e.g. `ip netns exec <ns>` (it execs, same PID). */
  constructor(args: string[], env: NodeJS.ProcessEnv = {}, wrap: string[] = []) {
    // PEER_NODE_ARGS: Node flags for every peer a test starts (e.g. `--cpu-prof --cpu-prof-dir=/tmp/prof`).
    const nodeArgs = process.env.PEER_NODE_ARGS?.split(' ').filter((a) => a !== '') ?? []
    const argv = [...wrap, NODE22, ...nodeArgs, BIN, '--json', ...args]
    this.child = spawn(argv[0], argv.slice(1), { env: { ...process.env, ...env }, stdio: 'pipe' })
    this.child.stdout.on('data', (d: Buffer) => {
      this.buf += d.toString()
      let i = this.buf.indexOf('\n')
      while (i >= 0) {
        const line = this.buf.slice(0, i)
        this.buf = this.buf.slice(i + 1)
        try {
          this.events.push(JSON.parse(line) as JsonEvent)
        } catch {
          this.events.push({ event: 'non-json-line', line })
        }
        i = this.buf.indexOf('\n')
      }
    })
    this.child.stderr.on('data', (d: Buffer) => {
      this.stderr += d.toString()
    })
    this.child.on('exit', (code) => {
      this.exitCode = code
    })
  }

  of(event: string): JsonEvent[] {
    return this.events.filter((e) => e.event === event)
  }

  async ready(timeoutMs = 20_000): Promise<JsonEvent> {
    await waitFor(() => this.of('ready').length > 0 || this.exitCode !== undefined, timeoutMs, 'ready event')
    const r = this.of('ready')[0]
    if (r === undefined) throw new Error(`pos-peer exited (${this.exitCode}) before ready: ${this.stderr}`)
    return r
  }

  get addr(): string {
    const ready = this.of('ready')[0]
    if (ready === undefined) throw new Error('pos-peer is not ready yet')
    return (ready.addrs as string[])[0]
  }

  send(line: string): void {
    this.child.stdin.write(`${line}\n`)
  }

  /** Final reading ids seen in `block` events whose height is final per `finalized` events. */
  finalReadingBpms(): number[] {
    const finalHashes = new Set(this.of('finalized').map((e) => e.hash as string))
    const byHash = new Map(this.of('block').map((e) => [e.hash as string, e]))
    const out: number[] = []
    for (const h of finalHashes) for (const r of (byHash.get(h)?.readings as { bpm: number }[]) ?? []) out.push(r.bpm)
    return out
  }

  /**
   * The final chain as this peer reported it (`finalized` and `block` events), lowest first;
   * undefined while a block of it has not been reported.
   */
  finalChain(): JsonEvent[] | undefined {
    const tip = this.of('finalized').at(-1)
    if (tip === undefined) return []
    const byHash = new Map(this.of('block').map((e) => [e.hash as string, e]))
    const out: JsonEvent[] = []
    for (let h = tip.hash as string; ; ) {
      const b = byHash.get(h)
      if (b === undefined) return undefined
      out.push(b)
      if ((b.height as number) <= 1) return out.reverse()
      h = b.parent as string
    }
  }

  /**
   * One line on where this peer stands (for a failed wait: which peer stalled, and how): its head
   * and final heights, connections, the last blocks' proposers, warnings and the end of stderr.
   */
  summary(): string {
    const blocks = this.of('block')
    const proposers = blocks
      .slice(-8)
      .map((b) => `${b.height}:${String(b.proposer ?? '?').slice(-6)}`)
      .join(' ')
    const net = this.of('peer:connect').length - this.of('peer:disconnect').length
    const warnings = this.of('warning').map((w) => w.message as string)
    return [
      `pid ${this.child.pid} exit ${this.exitCode}`,
      `head ${this.of('head').at(-1)?.height ?? '-'} final ${this.of('finalized').at(-1)?.height ?? '-'}`,
      `blocks ${blocks.length} (last: ${proposers}) reorgs ${this.of('reorg').length} won ${this.of('won').length}`,
      `connected ${net}`,
      `warnings ${warnings.length}${warnings.length > 0 ? `: ${warnings.slice(-3).join(' | ')}` : ''}`,
      `stderr ${JSON.stringify(this.stderr.slice(-300))}`,
    ].join('; ')
  }

  async exit(timeoutMs = 10_000): Promise<number | null> {
    await waitFor(() => this.exitCode !== undefined, timeoutMs, 'process exit')
    return this.exitCode as number | null
  }

  kill(signal: NodeJS.Signals = 'SIGKILL'): void {
    if (this.exitCode === undefined) this.child.kill(signal)
  }
}

/** `waitFor`, and when it times out, each peer's `summary()` in the error (CI logs show no more). */
export async function waitForPeers(
  peers: readonly CliPeer[],
  cond: () => boolean,
  timeoutMs: number,
  what: string,
  everyMs?: number,
): Promise<void> {
  try {
    await waitFor(cond, timeoutMs, what, everyMs)
  } catch (err) {
    const lines = peers.map((p, i) => `  peer ${i}: ${p.summary()}`)
    throw new Error(`${(err as Error).message}\n${lines.join('\n')}`)
  }
}

/** Run pos-peer to completion (for error paths): exit code, stdout, stderr. */
export async function runCli(args: string[], env: NodeJS.ProcessEnv = {}, timeoutMs = 20_000) {
  const child = spawn(NODE22, [BIN, ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] })
  let stdout = ''
  let stderr = ''
  child.stdout.on('data', (d: Buffer) => {
    stdout += d.toString()
  })
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  const code = await new Promise<number | null>((resolve, reject) => {
    const t = setTimeout(() => {
      child.kill('SIGKILL')
      reject(new Error(`pos-peer ${args.join(' ')} did not exit in ${timeoutMs} ms`))
    }, timeoutMs)
    child.on('exit', (c) => {
      clearTimeout(t)
      resolve(c)
    })
  })
  return { code, stdout, stderr }
}

/** A process's resident memory now, in MB (from /proc). */
export function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m === null ? 0 : Number(m[1]) / 1024
}

/** Kill (SIGKILL) and reap every process in `procs`, emptying it: a test file's afterEach. */
export async function killAll(procs: CliPeer[]): Promise<void> {
  for (const p of procs.splice(0)) {
    if (process.env.PEER_NODE_ARGS?.includes('prof')) {
      p.kill('SIGTERM')
      await Promise.race([p.exit().catch(() => {}), new Promise((r) => setTimeout(r, 20000))])
    }
    p.kill('SIGKILL')
    await p.exit().catch(() => {})
  }
}
