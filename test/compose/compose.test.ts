import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { parse } from 'yaml'
import { readGenesisFile } from '../../src/cli/options.js'
import { slotAt } from '../../src/core/params.js'
import { CliPeer, type JsonEvent, runCli } from '../helpers/cli.js'
import { NetnsLab } from '../helpers/netns.js'
import { waitFor } from '../helpers/peers.js'
import { tempDirs } from '../helpers/tempdirs.js'

/**
 * docker-compose.yml without a Docker engine: each service gets a host of its own (a network
 * namespace with its own IP on a shared bridge, its service name in that host's /etc/hosts) and
 * runs its own `command` from the compose file with the locally built CLI standing in for the
 * image. Each named volume becomes a temp dir; `--json` is appended so the test can read events.
 */
interface Service {
  readonly name: string
  readonly command: string[]
  readonly volumes: string[]
  /** `restart: "no"`: a one-shot service (the genesis setup), run to completion first. */
  readonly oneShot: boolean
  /** Services this one waits for, with the condition. */
  readonly dependsOn: Record<string, string>
}

function loadCompose(): Service[] {
  const doc = parse(readFileSync(join(process.cwd(), 'docker-compose.yml'), 'utf8'), { merge: true }) as {
    services: Record<
      string,
      { command?: unknown; volumes?: unknown; restart?: string; depends_on?: Record<string, { condition: string }> }
    >
  }
  return Object.entries(doc.services)
    .map(([name, s]) => {
      if (!Array.isArray(s.command) || !s.command.every((a) => typeof a === 'string'))
        throw new Error(`service ${name}: command must be a list of strings`)
      return {
        name,
        command: s.command as string[],
        volumes: (s.volumes as string[] | undefined) ?? [],
        oneShot: s.restart === 'no',
        dependsOn: Object.fromEntries(Object.entries(s.depends_on ?? {}).map(([k, v]) => [k, v.condition])),
      }
    })
    .sort((a, b) => a.name.localeCompare(b.name))
}

/** A service's command with each volume's mount point replaced by that volume's temp dir. */
function withVolumes(s: Service, dirs: Map<string, string>): string[] {
  let args = [...s.command]
  for (const v of s.volumes) {
    const [volume, target] = v.split(':')
    const dir = dirs.get(volume) as string
    args = args.map((a) =>
      a === target || a.startsWith(`${target}/`) || a.startsWith(`${target}=`) ? dir + a.slice(target.length) : a,
    )
  }
  return args
}

const flag = (s: Service, name: string) => s.command[s.command.indexOf(name) + 1]

const temp = tempDirs('compose')
let lab: NetnsLab | undefined
const procs = new Map<string, CliPeer>()
const restarted: CliPeer[] = []
const argsOf = new Map<string, string[]>()

afterAll(async () => {
  for (const p of [...procs.values(), ...restarted]) p.kill('SIGKILL')
  for (const p of [...procs.values(), ...restarted]) await p.exit().catch(() => {})
  lab?.destroy()
  await temp.removeAll()
})

/** Reading ids in a final chain, with how often each appears. */
function readingCounts(chain: JsonEvent[]): Map<string, number> {
  const counts = new Map<string, number>()
  for (const b of chain) for (const r of b.readings as { id: string }[]) counts.set(r.id, (counts.get(r.id) ?? 0) + 1)
  return counts
}

const submitted = (p: CliPeer, before = Number.POSITIVE_INFINITY) =>
  p
    .of('reading')
    // `time` of a reading event is the reading's own time (ISO 8601)
    .filter((e) => Date.parse(e.time as string) < before)
    .map((e) => e.id as string)

// In CI it always runs (and fails without root); elsewhere it needs root and iproute2.
describe.skipIf(!NetnsLab.available() && process.env.CI !== 'true')(
  'docker-compose.yml on separate network hosts (needs root and iproute2)',
  () => {
    it('the compose services find each other by name, agree, and heal after a partition (majority of stake wins)', async () => {
      const everything = loadCompose()
      const setup = everything.filter((s) => s.oneShot)
      const services = everything.filter((s) => !s.oneShot)
      // What the compose file promises, checked here so the file and this test stay in step.
      expect(setup.map((s) => s.name)).toEqual(['genesis'])
      for (const s of services) expect(s.dependsOn).toEqual({ genesis: 'service_completed_successfully' })
      expect(services.length).toBeGreaterThanOrEqual(4)
      expect(services.map((s) => Number(flag(s, '--stake')))).toEqual([10, 20, 30, 40])
      for (const s of services) {
        expect(s.command).toContain('--auto-bpm')
        expect(s.command.filter((a) => a.startsWith('/dns4/')).length).toBe(services.length - 1)
      }
      // Named volumes: one temp dir each, shared by every service that mounts it.
      const volumes = new Map<string, string>()
      for (const v of everything.flatMap((s) => s.volumes.map((x) => x.split(':')[0])))
        if (!volumes.has(v)) volumes.set(v, await temp.make())
      // The one-shot genesis service first (`service_completed_successfully`), and again, as on a
      // second `docker compose up`: the file is kept, so the network stays the same.
      for (let run = 0; run < 2; run++) {
        const r = await runCli(withVolumes(setup[0], volumes))
        expect(r.code, r.stderr).toBe(0)
        expect(r.stdout).toMatch(run === 0 ? /wrote .*genesis\.json: network compose/ : /kept as it is/)
      }
      // Slots count from the genesis file's time (written just now), not the devnet's.
      const { params } = readGenesisFile(join(volumes.get('genesis') as string, 'genesis.json'))
      lab = NetnsLab.create(services.map((s) => s.name))
      for (const s of services) {
        const args = withVolumes(s, volumes)
        argsOf.set(s.name, args)
        procs.set(s.name, new CliPeer(args, {}, lab.exec(s.name)))
      }
      const all = [...procs.values()]
      await Promise.all(all.map((p) => p.ready(30_000)))
      // peer1 serves the dashboard (the port compose publishes).
      expect(String((procs.get(services[0].name) as CliPeer).of('ready')[0].http)).toMatch(/:8080$/)
      for (const p of all) expect(p.of('ready')[0].ledger).toBe(true)
      const ids = new Map(services.map((s) => [s.name, (procs.get(s.name) as CliPeer).of('ready')[0].peerId as string]))
      const dump = () =>
        all
          .map((p, i) => {
            const chain = p.finalChain()
            const warnings = p.of('warning').map((w) => w.message)
            return `${services[i].name}: final #${chain?.at(-1)?.height ?? '?'} blocks ${p.of('block').length} connects ${p.of('peer:connect').length} disconnects ${p.of('peer:disconnect').length} warnings ${JSON.stringify(warnings.slice(-5))} stderr ${p.stderr.slice(-300)}`
          })
          .join('\n')
      const finalEverywhere = (readingIds: string[]) =>
        all.every((p) => {
          const chain = p.finalChain()
          if (chain === undefined) return false
          const counts = readingCounts(chain)
          return readingIds.every((id) => counts.get(id) === 1)
        })

      // 1. Convergence: every peer's readings are final, once, on every peer; all four stakes are in
      // the final chain and counting (so all four count for finality before the partition).
      await waitFor(() => all.every((p) => p.of('reading').length >= 2), 60_000, 'readings from every peer')
      const early = all.flatMap((p) => submitted(p))
      expect(early.length).toBeGreaterThanOrEqual(2 * all.length)
      const staked = (p: CliPeer) =>
        new Set(
          (p.finalChain() ?? []).flatMap(
            (b) => (b.stakes as { validator: string; stake: number }[] | undefined)?.map((st) => st.validator) ?? [],
          ),
        )
      // ... and counting: four final blocks after the activation delay of the last announcement
      // (each such block lets at least minChurn = 32 of the 100 in).
      const counting = (p: CliPeer) => {
        const chain = p.finalChain() ?? []
        const lastStake = Math.max(
          ...chain.filter((b) => (b.stakes as unknown[]).length > 0).map((b) => b.slot as number),
        )
        return chain.filter((b) => (b.slot as number) >= lastStake + params.activationDelaySlots).length >= 4
      }
      await waitFor(
        () =>
          finalEverywhere(early) && all.every((p) => [...ids.values()].every((id) => staked(p).has(id)) && counting(p)),
        120_000,
        'early readings and all four stakes final and counting on every peer',
      ).catch((err) => {
        console.log(dump())
        throw err
      })
      const chains = all.map((p) => p.finalChain() as JsonEvent[])
      const common = Math.min(...chains.map((c) => c.length))
      for (const c of chains) expect(c[common - 1].hash).toBe(chains[0][common - 1].hash)

      // 2. Partition: cut the 40-stake host. Neither side holds more than 2/3 of the stake, so
      // neither finalizes; both keep making blocks.
      const minority = services[services.length - 1].name
      const cutPeer = procs.get(minority) as CliPeer
      const majority = all.filter((p) => p !== cutPeer)
      const finalAtCut = all.map((p) => p.of('finalized').length)
      const blocksAtCut = all.map((p) => p.of('block').length)
      const cutAt = Date.now()
      lab.setLink(minority, false)
      await waitFor(
        () =>
          all.every(
            (p, i) => p.of('block').length >= blocksAtCut[i] + 8 && submitted(p).length > submitted(p, cutAt).length,
          ),
        60_000,
        'blocks and readings on both sides of the partition',
      )
      // Blocks made after the cut (a slot of margin for messages already on their way).
      const afterCut = (b: JsonEvent) => (b.slot as number) >= slotAt(params, cutAt) + 2
      const majorityBranch = majority[0].of('block').slice(blocksAtCut[0]).filter(afterCut)
      const minorityBranch = cutPeer.of('block').slice(blocksAtCut[all.indexOf(cutPeer)]).filter(afterCut)
      all.forEach((p, i) => {
        const slots = new Map(p.of('block').map((b) => [b.hash as string, b]))
        const finalizedDuring = p
          .of('finalized')
          .slice(finalAtCut[i])
          .map((f) => slots.get(f.hash as string))
        expect(finalizedDuring.filter((b) => b === undefined || afterCut(b))).toEqual([])
      })

      // 3. Heal: one final chain again, the majority's branch, and no reading lost from either side.
      const healedAt = Date.now()
      lab.setLink(minority, true)
      const both = all.flatMap((p) => submitted(p, healedAt))
      const duringCut = all.map((p) => submitted(p, healedAt).length - submitted(p, cutAt).length)
      expect(duringCut.every((n) => n > 0)).toBe(true)
      await waitFor(() => finalEverywhere(both), 120_000, 'every reading final once on every peer after healing').catch(
        (err) => {
          console.log(dump())
          throw err
        },
      )
      const healed = all.map((p) => p.finalChain() as JsonEvent[])
      const finalHashes = new Set(healed[0].map((b) => b.hash as string))
      const upTo = Math.min(...healed.map((c) => c.length))
      for (const c of healed) expect(c[upTo - 1].hash).toBe(healed[0][upTo - 1].hash)
      const minorityOnly = minorityBranch.filter((b) => b.proposer === ids.get(minority))
      expect(minorityOnly.length).toBeGreaterThan(0)
      expect(minorityOnly.some((b) => finalHashes.has(b.hash as string))).toBe(false)
      if (!majorityBranch.some((b) => finalHashes.has(b.hash as string))) {
        const show = (b: JsonEvent) => `#${b.height}@${(b.slot as number) % 1000}/${(b.hash as string).slice(0, 6)}`
        console.log(`cut slot ${slotAt(params, cutAt) % 1000} heal slot ${slotAt(params, healedAt) % 1000}`)
        console.log(`majority branch: ${majorityBranch.map(show)}`)
        console.log(`minority branch: ${minorityBranch.map(show)}`)
        console.log(`final: ${healed[0].slice(-15).map(show)}`)
      }
      expect(majorityBranch.some((b) => finalHashes.has(b.hash as string))).toBe(true)
      // 4. `docker compose stop peer2` (SIGTERM): it leaves, the other three keep finalizing;
      // `docker compose start peer2`: the same command on the same volume rejoins and catches up.
      const stopped = services[1].name
      const gone = procs.get(stopped) as CliPeer
      gone.kill('SIGTERM')
      expect(await gone.exit(15_000)).toBe(0)
      const rest = all.filter((p) => p !== gone)
      const restFrom = rest.map((p) => p.of('reading').length)
      await waitFor(
        () => rest.every((p, i) => p.of('reading').length > restFrom[i]),
        30_000,
        'new readings while peer2 is stopped',
      )
      const whileStopped = rest.flatMap((p, i) =>
        p
          .of('reading')
          .slice(restFrom[i])
          .map((e) => e.id as string),
      )
      await waitFor(
        () =>
          rest.every((p) => {
            const counts = readingCounts(p.finalChain() ?? [])
            return whileStopped.every((id) => counts.get(id) === 1)
          }),
        60_000,
        'readings final without peer2',
      )
      const back = new CliPeer(argsOf.get(stopped) as string[], {}, lab.exec(stopped))
      restarted.push(back)
      expect((await back.ready(30_000)).peerId).toBe(ids.get(stopped))
      await waitFor(() => back.of('reading').length > 0, 30_000, 'a reading from the restarted peer2')
      const fresh = back.of('reading')[0].id as string
      await waitFor(
        () =>
          [...rest, back].every((p) => {
            const f = p.of('finalized').at(-1)
            return (
              f !== undefined &&
              p
                .of('block')
                .some(
                  (b) =>
                    (b.readings as { id: string }[]).some((r) => r.id === fresh) &&
                    (b.height as number) <= (f.height as number),
                )
            )
          }),
        60_000,
        'the restarted peer caught up and its reading is final everywhere',
      ).catch((err) => {
        console.log(dump())
        throw err
      })
      console.log(
        `compose: ${services.length} hosts; partition ${Math.round((healedAt - cutAt) / 1000)} s; ` +
          `${both.length} readings final once everywhere; final height ${healed[0].length}; ` +
          `${stopped} stopped (exit 0), ${whileStopped.length} readings final without it, restarted with the same id`,
      )
    }, 420_000)
  },
)
