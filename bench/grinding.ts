// Lottery grinding: the share of blocks a 10% validator gets by trying many versions of each block
// it wins, or by withholding, with the seed taken from the parent's RANDAO mix (pos-peer) and,
// for comparison, from the parent's block hash (before). Prints a table; not a test.
// Run: npm run bench:grinding [-- --rounds 20000]
import { cpus } from 'node:os'
import { grindingShare, type Seed, type Strategy } from './grinding-model.js'

const argv = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) argv.set(process.argv[i], process.argv[i + 1])
const ROUNDS = Number(argv.get('--rounds') ?? 20_000)

const ci = (p: number, n: number) => 1.96 * Math.sqrt((p * (1 - p)) / n)
const rows: [Seed, Strategy, number, number][] = [
  ['mix', 'honest', 1, ROUNDS],
  ['mix', 'content', 64, ROUNDS],
  ['mix', 'withhold', 1, ROUNDS],
  ['hash', 'honest', 1, ROUNDS],
  ['hash', 'content', 4, Math.min(ROUNDS, 5000)],
  ['hash', 'content', 64, Math.min(ROUNDS, 5000)],
]
console.log(`grinding: attacker stake 10 of 100 (node ${process.version}, ${cpus()[0]?.model ?? 'cpu'})\n`)
console.log('| seed | strategy | versions | rounds | attacker share | 95% CI | ms |')
console.log('| --- | --- | ---: | ---: | ---: | ---: | ---: |')
for (const [seed, strategy, versions, rounds] of rows) {
  const t0 = performance.now()
  const r = grindingShare({ rounds, seed, strategy, versions })
  const ms = performance.now() - t0
  console.log(
    `| ${seed === 'mix' ? 'RANDAO mix' : 'parent hash (before)'} | ${strategy} | ${versions} | ${rounds} | ${(100 * r.share).toFixed(2)}% | ±${(100 * ci(r.share, rounds)).toFixed(2)} | ${ms.toFixed(0)} |`,
  )
}
