// A hostile stranger for the chaos soak (bench/soak.ts): a free key, no stake, no pos-peer code
// but our req/resp codecs. For --seconds it replays cheap tricks against every --target:
// a status claiming head 2^53-1 whose range answers are validly signed blocks on unknown parents
// (fake range sync), status answers naming addresses for peer exchange, and a status request
// storm. Prints one line of counts at the end.
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { signerFromLibp2pKey } from '../src/core/crypto.js'
import { makeChainConfig, slotAt } from '../src/core/params.js'
import { createBlock, createStake } from '../src/core/records.js'
import { fakeStatus, HostileNode } from '../test/helpers/hostile.js'

const args = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], process.argv[i + 1])
const net = makeChainConfig({ name: args.get('--network') ?? 'soak', slotMs: Number(args.get('--slot-ms') ?? 1000) })
const targets = (args.get('--targets') ?? '').split(',').filter((t) => t !== '')
const seconds = Number(args.get('--seconds') ?? 15)

const key = await generateKeyPair('Ed25519')
const signer = signerFromLibp2pKey(key)
const fakeIds = await Promise.all(
  Array.from({ length: 16 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()),
)
const hostile = await HostileNode.start(net, {
  key,
  status: () =>
    fakeStatus(net, {
      headHeight: Number.MAX_SAFE_INTEGER,
      headHash: new Uint8Array(32).fill(1),
      // Peer exchange toward the targets' own ports under made-up ids.
      peers: targets.map((t, i) => `${t.split('/p2p/')[0]}/p2p/${fakeIds[i % fakeIds.length]}`),
    }),
  handlers: {
    'blocks-by-range': async (_peer, { from, count }) =>
      Array.from(
        { length: count },
        (_, i) =>
          createBlock(net, signer, {
            height: from + i,
            slot: slotAt(net.params, Date.now()) - 1,
            parent: new Uint8Array(32).fill((from + i) % 251),
            readings: [],
            stakes: [createStake(net, signer, 1, 1)],
          }).bytes,
      ),
  },
})

let statuses = 0
let dials = 0
const until = Date.now() + seconds * 1000
while (Date.now() < until) {
  for (const t of targets) {
    try {
      const peer = await hostile.dial(t)
      dials++
      for (let i = 0; i < 10; i++) {
        await hostile.reqresp.status(peer)
        statuses++
      }
    } catch {
      // refused, rate-limited or unreachable: that is the point
    }
  }
  await new Promise((r) => setTimeout(r, 200))
}
console.log(
  `hostile: ${dials} dials, ${statuses} statuses answered, ${hostile.served['blocks-by-range']} range requests served to it`,
)
await hostile.stop()
process.exit(0)
