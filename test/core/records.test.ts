import { createHash, verify as nodeVerify } from 'node:crypto'
import { encode } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { ed25519Verify, verifySignature } from '../../src/core/crypto.js'
import { RecordError } from '../../src/core/errors.js'
import { makeChainConfig } from '../../src/core/params.js'
import {
  createReading,
  createStake,
  decodeBlock,
  decodeReading,
  decodeStake,
  encodeReading,
  encodeStake,
  peekReadingAuthor,
  verifyBlockSignature,
  verifyReadingSignature,
} from '../../src/core/records.js'
import { createBlock } from '../helpers/blocks.js'
import { testNetwork, testSigner } from '../helpers/fixtures.js'

const net = testNetwork()

describe('records', () => {
  it('round-trips a block through its canonical encoding with the same hash', async () => {
    const a = await testSigner('a')
    const r = createReading(net, a, 72, 1_000)
    const s = createStake(net, a, 100, 1)
    const b = createBlock(net, a, { height: 1, slot: 5, parent: net.id, readings: [r], stakes: [s] })
    const back = decodeBlock(net, b.bytes)
    expect(back.hashHex).toBe(b.hashHex)
    expect(back.readings[0].idHex).toBe(r.idHex)
    expect(back.stakes[0].stake).toBe(100)
    expect(verifyBlockSignature(net, back)).toBe(true)
    expect(decodeReading(encodeReading(r)).idHex).toBe(r.idHex)
    expect(decodeStake(encodeStake(s)).idHex).toBe(s.idHex)
  })

  it('an encoded block or record owns its buffer (kept for long, it must not pin a shared 8 KB slab)', async () => {
    const a = await testSigner('a')
    const readings = Array.from({ length: 6 }, (_, i) => createReading(net, a, 60 + i, 1_000 + i))
    const b = createBlock(net, a, { height: 1, slot: 5, parent: net.id, readings, stakes: [] })
    const s = createStake(net, a, 100, 1)
    for (const bytes of [b.bytes, encodeReading(readings[0]), encodeStake(s)]) {
      expect(bytes.byteLength).toBeGreaterThan(0)
      expect(bytes.buffer.byteLength).toBe(bytes.byteLength)
    }
    expect(b.bytes.byteLength).toBeGreaterThan(256)
  })

  it("peeks an encoded reading's author without decoding it (a hint for the validation queue, nothing more)", async () => {
    const a = await testSigner('a')
    const bytes = encodeReading(createReading(net, a, 72, 1_000))
    expect(peekReadingAuthor(bytes)).toEqual(a.publicKey)
    expect(peekReadingAuthor(bytes.subarray(0, 20))).toBeUndefined()
    expect(peekReadingAuthor(encode([1, 2, 3, 4]))).toBeUndefined()
    expect(peekReadingAuthor(new Uint8Array(0))).toBeUndefined()
  })

  it('hashes the proposer: the same content from two validators has two hashes', async () => {
    const [a, b] = [await testSigner('a'), await testSigner('b')]
    const content = { height: 1, slot: 5, parent: net.id, readings: [], stakes: [] }
    expect(createBlock(net, a, content).hashHex).not.toBe(createBlock(net, b, content).hashHex)
  })

  it('binds signatures to the network and the record type', async () => {
    const a = await testSigner('a')
    const other = makeChainConfig({ name: 'othernet' })
    const r = createReading(net, a, 72, 1_000)
    expect(verifyReadingSignature(net, r)).toBe(true)
    expect(verifyReadingSignature(other, r)).toBe(false)
    // A stake signature over the same fields is not a reading signature.
    const s = createStake(net, a, 72, 1_000)
    expect(verifyReadingSignature(net, { ...r, signature: s.signature })).toBe(false)
  })

  it('a signature checked once is remembered, and only for the exact key, message and signature', async () => {
    const a = await testSigner('cache-a')
    const b = await testSigner('cache-b')
    const msg = new TextEncoder().encode('pos-peer verified-signature cache')
    const sig = a.sign(msg)
    expect(verifySignature(a.publicKey, msg, sig)).toBe(true)
    expect(verifySignature(a.publicKey, msg, sig)).toBe(true)
    const flipped = Uint8Array.from(sig)
    flipped[10] ^= 1
    expect(verifySignature(a.publicKey, msg, flipped)).toBe(false)
    expect(verifySignature(b.publicKey, msg, sig)).toBe(false)
    expect(verifySignature(a.publicKey, Uint8Array.from([...msg, 0]), sig)).toBe(false)
  })

  it("refuses a small-order key's universal signature, which node:crypto (OpenSSL) accepts for any message", () => {
    // The identity point as the key, R the identity, S = 0: [S]B = R + [k]A holds for every message.
    const key = new Uint8Array(32)
    key[0] = 1
    const sig = new Uint8Array(64)
    sig[0] = 1
    const msg = new TextEncoder().encode('any reading at all')
    const spki = Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), key])
    expect(nodeVerify(null, msg, { key: spki, format: 'der', type: 'spki' }, sig)).toBe(true)
    expect(ed25519Verify(key, msg, sig)).toBe(false)
    expect(verifySignature(key, msg, sig)).toBe(false)
  })

  it('decoding any bytes gives a typed value or a RecordError, never anything else', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 600 }), (bytes) => {
        for (const decode of [() => decodeBlock(net, bytes), () => decodeReading(bytes), () => decodeStake(bytes)]) {
          try {
            decode()
          } catch (err) {
            expect(err).toBeInstanceOf(RecordError)
          }
        }
      }),
      { numRuns: 2000, seed: 42 },
    )
  })

  it('decoding structured junk (wrong types, lengths, floats, big ints) gives a RecordError', () => {
    const junk = fc.letrec((tie) => ({
      value: fc.oneof(
        fc.integer(),
        fc.double(),
        fc.bigInt({ min: 2n ** 60n, max: 2n ** 64n - 1n }),
        fc.string(),
        fc.uint8Array({ maxLength: 70 }),
        fc.constant(null),
        fc.array(tie('value'), { maxLength: 8 }),
      ),
    }))
    fc.assert(
      fc.property(fc.array(junk.value, { maxLength: 8 }), (value) => {
        const bytes = encode(value)
        expect(() => decodeBlock(net, bytes)).toThrow(RecordError)
        expect(() => decodeReading(bytes)).toThrow(RecordError)
      }),
      { numRuns: 1000, seed: 7 },
    )
  })

  it('refuses non-canonical encodings (the same value, other bytes)', async () => {
    const a = await testSigner('a')
    const r = createReading(net, a, 72, 1_000)
    const bytes = encodeReading(r)
    // 0x84 = array(4); write it as a non-minimal length (0x98 0x04).
    const loose = new Uint8Array([0x98, 0x04, ...bytes.subarray(1)])
    expect(() => decodeReading(loose)).toThrow(RecordError)
  })

  it("a block's bytes and hashes are those of cborg's encoding, as before blocks were encoded by hand", async () => {
    const a = await testSigner('a')
    const readings = [70, 71, 72].map((bpm) => createReading(net, a, bpm, 1_000 + bpm))
    const s = createStake(net, a, 100, 1)
    const parent = createBlock(net, a, { height: 1, slot: 5, parent: net.id, readings: [], stakes: [] })
    const b = createBlock(net, a, { height: 2, slot: 6, parent: parent.hash, readings, stakes: [s], votes: [parent] })
    const tuple = (r: (typeof readings)[0]) => [r.author, r.bpm, r.time, r.signature]
    const header = (h: typeof parent) => [
      h.height,
      h.slot,
      h.parent,
      h.proposer,
      [h.source.hash, h.source.epoch],
      h.reveal,
    ]
    const body = [
      readings.map(tuple),
      [[s.validator, s.stake, s.seq, s.commit, s.signature]],
      [],
      [],
      [[...header(parent), parent.bodyHash, parent.signature]],
    ]
    expect(Buffer.from(b.bodyHash).toString('hex')).toBe(createHash('sha256').update(encode(body)).digest('hex'))
    expect(Buffer.from(b.bytes).toString('hex')).toBe(
      Buffer.from(encode([...header(b), ...body, b.signature])).toString('hex'),
    )
    expect(b.hashHex).toBe(
      createHash('sha256')
        .update(encode([...header(b), b.bodyHash]))
        .digest('hex'),
    )
  })

  it('refuses a block whose fields read right but are not in their one encoding (the height as a float)', async () => {
    const a = await testSigner('a')
    const b = createBlock(net, a, { height: 1, slot: 5, parent: net.id, readings: [], stakes: [] })
    expect(b.bytes.subarray(0, 2)).toEqual(new Uint8Array([0x8c, 0x01]))
    // 1.0 as a half float (0xf9 0x3c 0x00): decodes to the number 1, as the height field expects.
    const loose = new Uint8Array([0x8c, 0xf9, 0x3c, 0x00, ...b.bytes.subarray(2)])
    try {
      decodeBlock(net, loose)
      expect.unreachable()
    } catch (err) {
      expect((err as RecordError).code).toBe('BAD_ENCODING')
    }
  })

  it('refuses oversized input before decoding it', () => {
    const big = new Uint8Array(net.params.maxBlockBytes + 1)
    try {
      decodeBlock(net, big)
      expect.unreachable()
    } catch (err) {
      expect((err as RecordError).code).toBe('OVERSIZED')
    }
  })
})
