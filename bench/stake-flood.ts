// The stake flood of issue 10, in process: three honest validators (40/30/30) and a flood of
// fresh keys announcing stake 1 each, 256 per block (the block limit), every honest validator
// proposing and voting every slot. Prints, every 25 slots: the stake table, the activation queue,
// the flood stake that counts, finality, the non-final tree and this process's memory. The flood
// starts at slot 5, once the honest validators' chain runs. Not a test.
// Run: npm run bench:flood [-- --keys 60000 --slots 300]
import { cpus } from 'node:os'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { toHex, utf8 } from '../src/core/bytes.js'
import { Chain } from '../src/core/chain.js'
import { sha256, signerFromLibp2pKey } from '../src/core/crypto.js'
import { Mempool } from '../src/core/mempool.js'
import { makeChainConfig, slotStart } from '../src/core/params.js'
import { buildSignedCandidate } from '../src/core/proposer.js'
import { createStake, type StakeAnnouncement } from '../src/core/records.js'
import { queuedStake } from '../src/core/state.js'

const argv = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) argv.set(process.argv[i], process.argv[i + 1])
const KEYS = Number(argv.get('--keys') ?? 60_000)
const SLOTS = Number(argv.get('--slots') ?? 300)

const net = makeChainConfig({ name: 'flood', slotMs: 1000 })
const key = async (name: string) =>
  signerFromLibp2pKey(await generateKeyPairFromSeed('Ed25519', sha256(utf8(`flood ${name}`))))
const honest = await Promise.all(['a', 'b', 'c'].map(key))
const stakes = [40, 30, 30]
const chain = new Chain(net)
const pools = honest.map(() => new Mempool({ maxStakes: 10_000 }))
for (const [i, s] of honest.entries()) for (const pool of pools) pool.addStake(createStake(net, s, stakes[i], 1))

const t0 = performance.now()
const flood: StakeAnnouncement[] = []
for (let i = 0; i < KEYS; i++) flood.push(createStake(net, await key(`k${i}`), 1, 1, sha256(utf8(`commit ${i}`))))
console.log(
  `stake flood: ${KEYS} keys of stake 1 next to 100 honest stake (signed in ${((performance.now() - t0) / 1000).toFixed(1)} s; node ${process.version}, ${cpus()[0]?.model ?? 'cpu'})\n`,
)
console.log(
  '| slot | stake entries | queued (keys) | flood stake counting | final height | head height | stalled blocks | tree nodes | RSS MB | heap MB |',
)
console.log('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |')
let next = 0
const honestKeys = new Set(honest.map((s) => toHex(s.publicKey)))
for (let slot = 1; slot <= SLOTS; slot++) {
  // From slot 5 (a running network) the flood arrives by gossip as fast as the pools take it
  // (each holds at most 10,000 announcements).
  while (slot >= 5 && next < flood.length && pools.every((p) => p.addStake(flood[next]))) next++
  const now = slotStart(net.params, slot) + 100
  for (const [i, s] of honest.entries()) {
    const b = buildSignedCandidate(chain, pools[i], s, slot)
    if (b === undefined) continue
    chain.import(b, now)
    for (const pool of pools) pool.pruneFinal(chain)
  }
  if (slot % 25 === 0 || slot === SLOTS) {
    const st = chain.head.state
    let counting = 0
    for (const [k, e] of st.stakes) if (!honestKeys.has(k)) counting += e.counted
    const m = process.memoryUsage()
    console.log(
      `| ${slot} | ${st.stakes.size} | ${queuedStake(st).validators} | ${counting} | ${chain.root.height} | ${chain.head.height} | ${st.stall} | ${chain.chainTo().length} | ${(m.rss / 2 ** 20).toFixed(0)} | ${(m.heapUsed / 2 ** 20).toFixed(0)} |`,
    )
  }
}
