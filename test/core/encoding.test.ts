import { encode } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { decodeCanonical, encodeCanonical } from '../../src/core/encoding.js'

/** cborg's encoding, or the error it throws. */
function cborg(v: unknown): Uint8Array | string {
  try {
    return new Uint8Array(encode(v))
  } catch (err) {
    return (err as Error).message
  }
}

function ours(v: unknown): Uint8Array | string {
  try {
    return encodeCanonical(v)
  } catch (err) {
    return (err as Error).message
  }
}

// Integers around every head-size boundary of CBOR, and anywhere up to 2^53 - 1.
const boundaries = [0, 23, 24, 255, 256, 65_535, 65_536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER]
const uint = fc.oneof(
  fc.constantFrom(...boundaries),
  fc
    .constantFrom(...boundaries)
    .chain((b) => fc.integer({ min: -2, max: 2 }).map((d) => Math.max(0, Math.min(b + d, Number.MAX_SAFE_INTEGER)))),
  fc.maxSafeNat(),
)
const bytes = fc.oneof(
  fc.uint8Array({ maxLength: 40 }),
  fc.constantFrom(24, 255, 256).map((n) => new Uint8Array(n).fill(7)),
)
const ascii = fc.string({ unit: 'binary-ascii', maxLength: 30 })
// What our encoder writes itself: records, headers, block bodies.
const plain = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, uint, bytes, ascii, tie('array')),
  array: fc.array(tie('value'), { maxLength: 12 }),
})).value
// What it hands to cborg: negative and fractional numbers, other text, maps, booleans, null,
// nesting beyond its depth, Buffers (bytes to both).
const other = fc.oneof(
  fc.integer({ min: -1_000_000, max: -1 }),
  fc.double({ noNaN: true }),
  fc.string({ unit: 'grapheme', maxLength: 10 }),
  fc.dictionary(ascii, uint, { maxKeys: 4 }),
  fc.constantFrom(true, false, null, -0, 2 ** 53, 2 ** 64),
  fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)),
  uint.map((n) => [[[[[[[[[[n]]]]]]]]]]),
)
const mixed = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, plain, other, tie('array')),
  array: fc.array(tie('value'), { maxLength: 10 }),
})).value

/** Equal encodings (or errors), compared as hex: readable in a failure, quick for small values. */
function same(v: unknown): void {
  const [a, b] = [ours(v), cborg(v)]
  expect(typeof a === 'string' ? a : Buffer.from(a).toString('hex')).toBe(
    typeof b === 'string' ? b : Buffer.from(b).toString('hex'),
  )
}

describe('encodeCanonical', () => {
  it('writes the bytes cborg writes for records, headers and bodies', () => {
    fc.assert(
      fc.property(plain, (v) => same(v)),
      { numRuns: 2000 },
    )
  })

  it('gives cborg what it does not write itself, with the same bytes or the same error', () => {
    fc.assert(
      fc.property(mixed, (v) => same(v)),
      { numRuns: 2000 },
    )
  })

  it('writes long byte strings and arrays with 3- and 5-byte heads as cborg does', () => {
    same([new Uint8Array(65_535), new Uint8Array(65_536)])
    same(new Array(70_000).fill(1))
  })

  it('always returns a buffer of its own (no view into a shared pool)', () => {
    for (const v of [[1, new Uint8Array(300)], { a: new Uint8Array(300) }, [-1, new Uint8Array(300)]]) {
      const out = encodeCanonical(v)
      expect(out.byteLength).toBe(out.buffer.byteLength)
    }
  })

  it('round-trips through decodeCanonical, which refuses any other encoding of the value', () => {
    fc.assert(
      fc.property(plain, (v) => {
        const b = encodeCanonical(v)
        expect(Buffer.compare(encodeCanonical(decodeCanonical(b, 1 << 20)), b)).toBe(0)
      }),
      { numRuns: 500 },
    )
    // 1 as a two-byte integer, and as a half float: the same value, not its one encoding.
    expect(() => decodeCanonical(new Uint8Array([0x81, 0x18, 0x01]), 100)).toThrow()
    expect(() => decodeCanonical(new Uint8Array([0x81, 0xf9, 0x3c, 0x00]), 100)).toThrow()
  })
})
