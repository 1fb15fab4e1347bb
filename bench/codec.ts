// Codec benchmark: what every peer does with a full block (1,024 readings from 1,000 keys) under a
// reading spam: decode it from the wire, build and sign one, decode its readings as gossip
// delivers them, encode its body directly against cborg's general encoder, and check its readings'
// signatures with libsodium (what peers run) against node:crypto (OpenSSL, before). Prints a table;
// not a test. Run: npm run bench:codec
import { createPublicKey, verify } from 'node:crypto'
import { cpus } from 'node:os'
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { encode } from 'cborg'
import { utf8 } from '../src/core/bytes.js'
import { ed25519Verify, sha256, signerFromLibp2pKey } from '../src/core/crypto.js'
import { encodeCanonical } from '../src/core/encoding.js'
import { makeChainConfig } from '../src/core/params.js'
import {
  createBlock,
  createReading,
  decodeBlock,
  decodeReading,
  encodeReading,
  signingMessage,
} from '../src/core/records.js'

const READINGS = 1024
const KEYS = 1000
const ROUNDS = 9
const ITERATIONS = 30

const net = makeChainConfig({ name: 'bench-codec', slotMs: 1000 })
const signers = await Promise.all(
  Array.from({ length: KEYS }, async (_, i) =>
    signerFromLibp2pKey(await generateKeyPairFromSeed('Ed25519', sha256(utf8(`bench codec ${i}`)))),
  ),
)
const readings = Array.from({ length: READINGS }, (_, i) =>
  createReading(net, signers[i % KEYS], 60 + (i % 100), 1_700_000_000_000 + i),
)
const make = () => createBlock(net, signers[0], { height: 10, slot: 12, parent: net.id, readings, stakes: [] })
const block = make()
const encoded = readings.map(encodeReading)
const body = [readings.map((r) => [r.author, r.bpm, r.time, r.signature]), [], [], [], []]
const messages = readings.map((r) => signingMessage('reading', net.id, r.id))
// node:crypto with each key parsed once (the old path cached parsed keys): its best case.
const spki = Buffer.from('302a300506032b6570032100', 'hex')
const keyObjects = readings.map((r) =>
  createPublicKey({ key: Buffer.concat([spki, r.author]), format: 'der', type: 'spki' }),
)
const allValid = (ok: boolean[]) => {
  if (ok.includes(false)) throw new Error('a valid signature was refused')
}

const cases: [string, () => unknown][] = [
  [`decodeBlock (${READINGS} readings, ${block.bytes.byteLength} bytes)`, () => decodeBlock(net, block.bytes)],
  [`createBlock (${READINGS} readings, signed)`, make],
  [`decodeReading x ${READINGS}`, () => encoded.map(decodeReading)],
  ['encode the body: encodeCanonical', () => encodeCanonical(body)],
  ['encode the body: cborg encode', () => encode(body)],
  [
    `check ${READINGS} reading signatures: libsodium (ed25519Verify)`,
    () => allValid(readings.map((r, i) => ed25519Verify(r.author, messages[i], r.signature))),
  ],
  [
    `check ${READINGS} reading signatures: node:crypto (OpenSSL, parsed keys)`,
    () => allValid(readings.map((r, i) => verify(null, messages[i], keyObjects[i], r.signature))),
  ],
]

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.floor(s.length / 2)]
}

// Each case on its own (its garbage is not the next one's pause): a warm-up, then rounds.
const times = new Map<string, number[]>()
for (const [name, fn] of cases) {
  for (let i = 0; i < ITERATIONS; i++) fn()
  const rounds: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    const t0 = performance.now()
    for (let i = 0; i < ITERATIONS; i++) fn()
    rounds.push((performance.now() - t0) / ITERATIONS)
  }
  times.set(name, rounds)
}

console.log(
  `\ncodec: ${ROUNDS} rounds of ${ITERATIONS} after a warm-up (node ${process.version}, ${cpus()[0]?.model ?? 'cpu'})\n`,
)
console.log('| operation | ms, fastest round | ms, median round |')
console.log('| --- | ---: | ---: |')
for (const [name] of cases) {
  const t = times.get(name) ?? []
  console.log(`| ${name} | ${Math.min(...t).toFixed(2)} | ${median(t).toFixed(2)} |`)
}
