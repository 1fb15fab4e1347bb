import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { CliPeer, killAll } from '../helpers/cli.js'
import { waitFor } from '../helpers/peers.js'
import { tempDirs } from '../helpers/tempdirs.js'

const procs: CliPeer[] = []
const temp = tempDirs('cli')
const NET = ['--network', 'clitest', '--slot-ms', '300', '--port', '0']

const tempDir = temp.make

function start(args: string[]): CliPeer {
  const p = new CliPeer([...NET, ...args])
  procs.push(p)
  return p
}

afterEach(async () => {
  await killAll(procs)
  await temp.removeAll()
})

describe('pos-peer processes', () => {
  it('three processes fed on stdin converge on one chain; SIGTERM exits 0; a restart keeps the identity', async () => {
    const home = await tempDir()
    const a = start(['--stake', '10', '--data-dir', join(home, 'a')])
    await a.ready()
    const b = start(['--stake', '30', '--data-dir', join(home, 'b'), '--bootstrap', a.addr])
    const c = start(['--stake', '60', '--ephemeral', '--bootstrap', a.addr])
    await Promise.all([b.ready(), c.ready()])
    await waitFor(() => [a, b, c].every((p) => p.of('peer:connect').length >= 2), 60_000, 'all connected')
    a.send('61')
    b.send('62')
    c.send('63')
    c.send('not-a-number')
    await waitFor(
      () => [a, b, c].every((p) => [61, 62, 63].every((bpm) => p.finalReadingBpms().includes(bpm))),
      60_000,
      'readings final on all three',
    ).catch((err) => {
      for (const p of [a, b, c]) {
        const blocks = p.of('block')
        console.log(
          `peer: blocks ${blocks.length} last #${blocks.at(-1)?.height} finalized #${p.of('finalized').at(-1)?.height} final bpms ${p.finalReadingBpms()} connects ${p.of('peer:connect').length} reorgs ${p.of('reorg').length}`,
        )
        console.log(
          JSON.stringify(
            blocks
              .slice(-6)
              .map((x) => [x.height, x.slot, String(x.proposer).slice(-4), (x.readings as unknown[]).length]),
          ),
        )
        console.log(p.stderr.slice(-1500))
      }
      throw err
    })
    expect(c.of('warning').some((w) => String(w.message).includes('not a BPM'))).toBe(true)
    for (const p of [a, b, c]) expect(p.finalReadingBpms().filter((x) => x === 62)).toHaveLength(1)
    const idBefore = b.of('ready')[0].peerId
    b.kill('SIGTERM')
    expect(await b.exit(8000)).toBe(0)
    const b2 = start(['--stake', '30', '--data-dir', join(home, 'b'), '--bootstrap', a.addr])
    expect((await b2.ready()).peerId).toBe(idBefore)
  }, 180_000)

  it('a peer killed with SIGKILL and restarted from its data dir loses no reading from its outbox', async () => {
    const home = await tempDir()
    const a = start(['--stake', '100', '--ephemeral'])
    await a.ready()
    // The victim cannot reach anyone (its bootstrap address is closed), so its readings stay in its outbox.
    const victim = start(['--stake', '50', '--data-dir', join(home, 'v'), '--bootstrap', '127.0.0.1:9'])
    await victim.ready()
    for (const bpm of [71, 72, 73, 74, 75]) victim.send(String(bpm))
    await waitFor(() => victim.of('reading').length === 5, 10_000, 'readings in the outbox')
    victim.kill('SIGKILL')
    await victim.exit()
    const back = start(['--stake', '50', '--data-dir', join(home, 'v'), '--bootstrap', a.addr])
    await back.ready()
    await waitFor(
      () => [71, 72, 73, 74, 75].every((bpm) => a.finalReadingBpms().includes(bpm)),
      60_000,
      'outbox readings final after the restart',
    )
    for (const bpm of [71, 72, 73, 74, 75]) expect(a.finalReadingBpms().filter((x) => x === bpm)).toHaveLength(1)
  }, 90_000)
})
