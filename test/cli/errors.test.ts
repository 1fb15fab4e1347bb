import { mkdir, writeFile } from 'node:fs/promises'
import { createServer, type Server } from 'node:net'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BIN, CliPeer, killAll, NODE22, runCli } from '../helpers/cli.js'
import { tempDirs } from '../helpers/tempdirs.js'

const temp = tempDirs('err')
const procs: CliPeer[] = []
const NET = ['--network', 'errtest', '--slot-ms', '300']

const tempDir = temp.make

afterEach(async () => {
  await killAll(procs)
  await temp.removeAll()
})

/** One clear line on stderr, no stack trace. */
function expectOneLine(stderr: string, pattern: RegExp): void {
  const lines = stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('(run pos-peer --help'))
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(pattern)
  expect(stderr).not.toMatch(/\n\s+at /)
}

describe('pos-peer error paths', () => {
  it.each([
    [['--stake', '-1'], /--stake/],
    [['--stake', 'abc'], /--stake must be a whole number/],
    [['--stake', '1.5'], /--stake must be a whole number/],
    [['--stake', '4294967297'], /--stake must be from 0 to 4294967296/],
    [['--port', '70000'], /--port must be from 0 to 65535/],
    [['--slot-ms', '10'], /--slot-ms must be from 50/],
    [['--checkpoint', '12:abc', '--ephemeral'], /--checkpoint 12:abc: expected <height>:<block hash>/],
    [['--checkpoint', `0:${'ab'.repeat(32)}`, '--ephemeral'], /--checkpoint 0:.*expected <height>:<block hash>/],
    [['--bootstrap', 'not an address', '--ephemeral'], /--bootstrap not an address: expected host:port/],
    [['--data-dir', '/tmp/x', '--ephemeral'], /only one of --data-dir, --name and --ephemeral/],
    [['--network', 'Bad Name!'], /--network takes/],
    [['--log-level', 'loud'], /--log-level/],
    [['--frobnicate'], /unknown option/],
    [['--http', 'not-an-address', '--ephemeral'], /--http not-an-address: expected host:port or port/],
    [['--http', '127.0.0.1:99999', '--ephemeral'], /--http 127\.0\.0\.1:99999: expected host:port/],
    [['--log-format', 'xml'], /--log-format/],
    [
      ['--log-file', '/nonexistent-dir/pos-peer.log', '--ephemeral'],
      /--log-file \/nonexistent-dir\/pos-peer.log: ENOENT/,
    ],
  ])('usage error %j exits 2 with one line', async (args, pattern) => {
    const { code, stderr, stdout } = await runCli([...NET, ...args])
    expect(code).toBe(2)
    expect(stdout).toBe('')
    expectOneLine(stderr, pattern)
  })

  it.each([
    [{ POS_PEER_STAKE: 'abc' }, /--stake.*from env 'POS_PEER_STAKE'.*whole number/],
    [{ POS_PEER_PORT: '70000' }, /--port.*POS_PEER_PORT.*from 0 to 65535/],
    [{ POS_PEER_LOG_LEVEL: 'loud' }, /POS_PEER_LOG_LEVEL/],
  ])('a bad environment variable %j exits 2 naming it', async (env, pattern) => {
    const { code, stderr } = await runCli(NET, env)
    expect(code).toBe(2)
    expectOneLine(stderr, pattern)
  })

  it('an explicit port that is taken exits 1 naming the port', async () => {
    const srv: Server = createServer()
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    const port = (srv.address() as { port: number }).port
    try {
      const { code, stderr } = await runCli([...NET, '--ephemeral', '--port', String(port)])
      expect(code).toBe(1)
      expectOneLine(stderr, new RegExp(`port ${port} on 127.0.0.1 is already in use`))
    } finally {
      srv.close()
    }
  })

  it('a taken --http port exits 1 naming it, and leaves nothing running', async () => {
    const srv: Server = createServer()
    await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r))
    const port = (srv.address() as { port: number }).port
    try {
      const { code, stderr } = await runCli([...NET, '--ephemeral', '--port', '0', '--http', String(port)])
      expect(code).toBe(1)
      expectOneLine(stderr, new RegExp(`--http 127\\.0\\.0\\.1:${port}: the port is in use`))
    } finally {
      srv.close()
    }
  })

  it('an unreadable key file exits 1 naming the file', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'peer.key'), 'this is not a key')
    const { code, stderr } = await runCli([...NET, '--port', '0', '--data-dir', dir])
    expect(code).toBe(1)
    expectOneLine(stderr, new RegExp(`key file ${join(dir, 'peer.key')} is not a libp2p private key`))
  })

  it('a corrupt data dir exits 1 naming it, and is left as it was', async () => {
    const dir = await tempDir()
    await mkdir(join(dir, 'chain'), { recursive: true })
    await writeFile(join(dir, 'chain', 'CURRENT'), 'garbage\n')
    const { code, stderr } = await runCli([...NET, '--port', '0', '--data-dir', dir])
    expect(code).toBe(1)
    expectOneLine(stderr, new RegExp(join(dir, 'chain')))
  })

  it('a data dir in use by a running peer exits 1 and says so', async () => {
    const dir = await tempDir()
    const first = new CliPeer([...NET, '--port', '0', '--data-dir', dir])
    procs.push(first)
    await first.ready()
    const { code, stderr } = await runCli([...NET, '--port', '0', '--data-dir', dir])
    expect(code).toBe(1)
    expectOneLine(stderr, /is in use by another pos-peer/)
  })

  it('with no data-dir flag, a second peer takes the next free profile', async () => {
    const home = await tempDir()
    const a = new CliPeer([...NET, '--port', '0'], { POS_PEER_HOME: home })
    procs.push(a)
    const ra = await a.ready()
    const b = new CliPeer([...NET, '--port', '0', '--bootstrap', a.addr], { POS_PEER_HOME: home })
    procs.push(b)
    const rb = await b.ready()
    expect(ra.dataDir).toBe(join(home, 'errtest', '1'))
    expect(rb.dataDir).toBe(join(home, 'errtest', '2'))
    expect(rb.peerId).not.toBe(ra.peerId)
  })

  it('profiles remember their stake: terminals restarted in another order keep each stake identity', async () => {
    const home = await tempDir()
    const run = async (stake: number, bootstrap?: string) => {
      const p = new CliPeer(
        [...NET, '--port', '0', '--stake', String(stake), ...(bootstrap ? ['--bootstrap', bootstrap] : [])],
        { POS_PEER_HOME: home },
      )
      procs.push(p)
      return { p, ready: await p.ready() }
    }
    const ten = await run(10)
    const thirty = await run(30, ten.p.addr)
    for (const { p } of [ten, thirty]) {
      p.kill('SIGTERM')
      await p.exit(15_000)
    }
    // Now the 30 first: it must get the profile that ran with 30, not the first free one.
    const thirtyAgain = await run(30)
    const tenAgain = await run(10, thirtyAgain.p.addr)
    expect(thirtyAgain.ready.peerId).toBe(thirty.ready.peerId)
    expect(tenAgain.ready.peerId).toBe(ten.ready.peerId)
    expect(thirtyAgain.ready.dataDir).toBe(join(home, 'errtest', '2'))
  }, 60_000)

  it('a closed stdout (pos-peer --json | head -1) ends the peer cleanly, with no stack trace', async () => {
    const p = new CliPeer([...NET, '--stake', '5', '--ephemeral', '--port', '0'])
    procs.push(p)
    await p.ready()
    p.child.stdout.destroy()
    expect(await p.exit(15_000)).toBe(0)
    expect(p.stderr).not.toMatch(/EPIPE|at /)
  })

  it('--help and --version exit 0', async () => {
    const help = await runCli(['--help'])
    expect(help.code).toBe(0)
    expect(help.stdout).toMatch(/--stake <n>/)
    expect(help.stdout).toMatch(/--bootstrap <addr>/)
    const version = await runCli(['--version'])
    expect(version.code).toBe(0)
    expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/)
  })

  it('on Node older than 22, bin/pos-peer exits 1 with one line', async () => {
    const { spawnSync } = await import('node:child_process')
    // The machine's own node when it is older (it is 20 here), else Node 22 that reports 20.
    const system = spawnSync('/usr/bin/env', ['node', '--version'], { env: { PATH: '/usr/local/bin:/usr/bin:/bin' } })
    const old = /^v(1\d|2[01])\./.test(system.stdout?.toString() ?? '')
    const r = old
      ? spawnSync('/usr/bin/env', ['node', BIN, '--version'], { env: { PATH: '/usr/local/bin:/usr/bin:/bin' } })
      : spawnSync(NODE22, [
          '--import',
          'data:text/javascript,Object.defineProperty(process.versions,"node",{value:"20.1.0"})',
          BIN,
          '--version',
        ])
    expect(r.status).toBe(1)
    const lines = r.stderr.toString().trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toMatch(/needs Node.js 22 or newer/)
  })
})
