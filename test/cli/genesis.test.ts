import { readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CliPeer, killAll, runCli } from '../helpers/cli.js'
import { waitFor } from '../helpers/peers.js'
import { tempDirs } from '../helpers/tempdirs.js'

const temp = tempDirs('genesis')
const procs: CliPeer[] = []

afterEach(async () => {
  await killAll(procs)
  await temp.removeAll()
})

async function idOf(dir: string): Promise<string> {
  const { code, stdout, stderr } = await runCli(['id', '--data-dir', dir])
  expect(stderr).toBe('')
  expect(code).toBe(0)
  return stdout.trim()
}

const oneLine = (stderr: string) => stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('(run '))

describe('pos-peer genesis and pos-peer id', () => {
  it('id creates a key once and prints its peer id; genesis writes a file the peers start from', async () => {
    const [a, b, c, dir] = [await temp.make(), await temp.make(), await temp.make(), await temp.make()]
    const idA = await idOf(a)
    expect(idA).toMatch(/^12D3KooW/)
    expect(await idOf(a)).toBe(idA)
    const idB = await idOf(b)
    const file = join(dir, 'genesis.json')
    const gen = await runCli([
      'genesis',
      '--account',
      `${idA}=1000`,
      '--account',
      `${idB}=500`,
      '--network',
      'gtest',
      '--slot-ms',
      '300',
      '--out',
      file,
    ])
    expect(gen.code).toBe(0)
    expect(gen.stdout).toMatch(/wrote .*genesis\.json: network gtest \(id [0-9a-f]{16}\), 2 account\(s\), 1500 tokens/)
    const doc = JSON.parse(await readFile(file, 'utf8'))
    expect(doc).toMatchObject({ network: 'gtest', params: { slotMs: 300 }, allocations: { [idA]: 1000, [idB]: 500 } })
    // Not over another network's file by accident.
    const again = await runCli(['genesis', '--account', `${idA}=1`, '--out', file])
    expect(again.code).toBe(2)
    expect(oneLine(again.stderr)[0]).toMatch(/exists .*--force/)

    const pa = new CliPeer(['--genesis', file, '--data-dir', a, '--stake', '600', '--host', '127.0.0.1', '--port', '0'])
    procs.push(pa)
    const ready = await pa.ready()
    expect(ready.network).toMatch(/^[0-9a-f]{64}$/)
    const pb = new CliPeer([
      '--genesis',
      file,
      '--data-dir',
      b,
      '--stake',
      '500',
      '--bootstrap',
      pa.addr,
      '--port',
      '0',
    ])
    procs.push(pb)
    await pb.ready()
    await waitFor(
      () => pa.of('finalized').length > 0 && pb.of('finalized').length > 0,
      30_000,
      'final blocks on both genesis peers',
    )
    // Carol has no tokens: her stake is one clear line and exit 2, after waiting to sync.
    const { code, stderr } = await runCli([
      '--genesis',
      file,
      '--data-dir',
      c,
      '--stake',
      '10',
      '--bootstrap',
      pa.addr,
      '--port',
      '0',
    ])
    expect(code).toBe(2)
    expect(oneLine(stderr)).toHaveLength(1)
    expect(stderr).toMatch(/--stake 10: stake 10 is more than this account holds: 0 \(free \+ bonded\)/)
  }, 90_000)

  it.each([
    [['genesis'], /give at least one --account/],
    [['genesis', '--account', 'nobody=5'], /"nobody" is not a pos-peer address/],
    [['genesis', '--account', 'x'], /expected <peer id>=<tokens>/],
    [['id'], /pass one of --data-dir or --name/],
  ])('%j exits 2 with one line', async (args, pattern) => {
    const { code, stderr } = await runCli(args)
    expect(code).toBe(2)
    expect(oneLine(stderr)).toHaveLength(1)
    expect(stderr).toMatch(pattern)
  })

  it('--genesis: a missing, broken or mistyped file, or one with --network, is one line and exit 2', async () => {
    const dir = await temp.make()
    const bad = join(dir, 'bad.json')
    await writeFile(bad, '{"network": "x", "genesisTime": "2026-12-01T00:00:00Z", "allocations": {}, "extra": 1}')
    const broken = join(dir, 'broken.json')
    await writeFile(broken, '{"network": ')
    const cases: [string[], RegExp][] = [
      [['--genesis', join(dir, 'missing.json')], /--genesis .*missing\.json: cannot read it \(ENOENT\)/],
      [['--genesis', bad], /--genesis .*bad\.json: unknown field "extra"/],
      [['--genesis', broken], /--genesis .*broken\.json: not JSON/],
    ]
    for (const [args, pattern] of cases) {
      const { code, stderr } = await runCli([...args, '--ephemeral'])
      expect(code).toBe(2)
      expect(oneLine(stderr)).toHaveLength(1)
      expect(stderr).toMatch(pattern)
    }
    const good = join(dir, 'good.json')
    const id = await idOf(dir)
    const zero = await runCli(['genesis', '--account', `${id}=0`, '--out', good])
    expect(zero.code).toBe(2)
    expect(zero.stderr).toMatch(/balance must be a whole number of at least 1/)
    const feeless = await runCli(['genesis', '--account', `${id}=5`, '--reading-fee', 'two', '--out', good])
    expect(feeless.code).toBe(2)
    expect(feeless.stderr).toMatch(/--reading-fee must be a whole number of tokens, got two/)
    const fee = await runCli(['genesis', '--account', `${id}=5`, '--reading-fee', '2', '--out', good])
    expect(fee.code).toBe(0)
    expect(fee.stdout).toMatch(/reading fee 2/)
    expect(JSON.parse(await readFile(good, 'utf8')).params.readingFee).toBe(2)
    const both = await runCli(['--genesis', good, '--network', 'other', '--ephemeral'])
    expect(both.code).toBe(2)
    expect(both.stderr).toMatch(/--genesis sets the network name and slot length/)
  }, 60_000)
})
