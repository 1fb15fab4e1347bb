// Lottery benchmark: rank 10,000 candidates on one parent. Prints a table; not a test.
// Run: npm run bench:lottery
import { randomBytes } from 'node:crypto'
import { cpus } from 'node:os'
import { rankEntrants, ticketFor } from '../src/core/lottery.js'

const N = Number(process.argv[2] ?? 10_000)
const ROUNDS = 7
const proposers = Array.from({ length: N }, () => randomBytes(32))
const hashes = Array.from({ length: N }, () => randomBytes(32))

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

const tickets: number[] = []
const ranks: number[] = []
for (let round = 0; round < ROUNDS; round++) {
  const parent = randomBytes(32)
  const t0 = performance.now()
  const entrants = proposers.map((p, i) => ({
    ticket: ticketFor(parent, p),
    weight: 1 + ((i * 7919) % 1_000_000_000_000_000),
    hash: hashes[i],
  }))
  const t1 = performance.now()
  rankEntrants(entrants)
  const t2 = performance.now()
  // the first round warms the JIT; it is reported apart
  if (round > 0) {
    tickets.push(t1 - t0)
    ranks.push(t2 - t1)
  } else {
    console.log(`cold first round: tickets ${(t1 - t0).toFixed(1)} ms, rank ${(t2 - t1).toFixed(1)} ms`)
  }
}

console.log(
  `\nlottery: ${N} candidates, median of ${ROUNDS - 1} warm rounds (node ${process.version}, ${cpus()[0]?.model ?? 'cpu'})\n`,
)
console.log('| step | ms |')
console.log('| --- | ---: |')
console.log(`| tickets (sha256 + fixed-point ln) | ${median(tickets).toFixed(1)} |`)
console.log(`| exact ranking (BigInt cross-multiplication sort) | ${median(ranks).toFixed(1)} |`)
console.log(`| total | ${(median(tickets) + median(ranks)).toFixed(1)} |`)
