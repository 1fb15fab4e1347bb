// Writes test/vectors/lottery.json from the reference implementation. Run: npx vite-node scripts/make-lottery-vectors.ts
import { writeFileSync } from 'node:fs'
import { toHex, utf8 } from '../src/core/bytes.js'
import { sha256 } from '../src/core/crypto.js'
import { drawFor, rankEntrants, ticketFor } from '../src/core/lottery.js'

const cases = [
  { name: 'three validators 10/30/60', stakes: [10, 30, 60] },
  { name: 'equal stakes', stakes: [5, 5, 5, 5] },
  { name: 'huge stakes up to 10^15', stakes: [1, 1_000_000_000_000_000, 999_999_999_999_999, 123_456_789_012_345] },
  { name: 'one validator', stakes: [100] },
]
const out = cases.map((c, ci) => {
  const parent = sha256(utf8(`pos-peer lottery vector parent ${ci}`))
  const entrants = c.stakes.map((stake, i) => {
    const proposer = sha256(utf8(`pos-peer lottery vector proposer ${ci}/${i}`))
    const hash = sha256(utf8(`pos-peer lottery vector block ${ci}/${i}`))
    return {
      proposer: toHex(proposer),
      stake,
      blockHash: toHex(hash),
      draw: drawFor(parent, proposer).toString(),
      ln: ticketFor(parent, proposer).toString(),
    }
  })
  const ranked = rankEntrants(
    entrants.map((e, i) => ({ ln: BigInt(e.ln), weight: e.stake, hash: Buffer.from(e.blockHash, 'hex'), i })),
  )
  return { name: c.name, parent: toHex(parent), entrants, ranking: ranked.map((r) => r.i) }
})
writeFileSync('test/vectors/lottery.json', `${JSON.stringify(out, null, 2)}\n`)
console.log(`wrote ${out.length} cases`)
