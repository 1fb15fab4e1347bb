import { decode, encode } from 'cborg'
import { equalBytes } from './bytes.js'
import { RecordError } from './errors.js'

/**
 * Deterministic CBOR: minimal integers and definite lengths, as cborg's default encoder writes.
 * Always its own buffer (cborg returns encodings of about 256 B to 4 KB as views into Node's
 * shared 8 KB Buffer pool, so each block, vote or state kept for long would pin a whole slab: a
 * stalled chain's 700 blocks held 6 MB of slabs for about 1 MB of bytes).
 *
 * Records, headers and block bodies (arrays of unsigned integers, byte strings and ASCII text) are
 * written directly into one exactly sized buffer: cborg's general encoder builds a token and a
 * small array for every value, and a full block is re-encoded on every import (docs/PERFORMANCE.md,
 * reading spam). Anything else (maps, negative numbers, other text) goes to cborg. Both give the
 * same bytes; `test/core/encoding.test.ts` compares them on random values.
 */
export function encodeCanonical(value: unknown): Uint8Array {
  const size = plainSize(value, 0)
  if (size >= 0) {
    const out = new Uint8Array(size)
    writePlain(out, 0, value)
    return out
  }
  const bytes = encode(value)
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)
}

/** Arrays nest this deep at most in our records (a block's votes: 3); deeper goes to cborg. */
const PLAIN_DEPTH = 8

const headSize = (n: number): number => (n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x1_0000_0000 ? 5 : 9)

function isAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return false
  return true
}

/** The encoded size of a value made of unsigned safe integers, bytes, ASCII text and arrays; else -1. */
function plainSize(v: unknown, depth: number): number {
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? headSize(v) : -1
  if (v instanceof Uint8Array) return headSize(v.byteLength) + v.byteLength
  if (typeof v === 'string') return isAscii(v) ? headSize(v.length) + v.length : -1
  if (!Array.isArray(v) || depth >= PLAIN_DEPTH) return -1
  let size = headSize(v.length)
  for (let i = 0; i < v.length; i++) {
    const s = plainSize(v[i], depth + 1)
    if (s < 0) return -1
    size += s
  }
  return size
}

/** A CBOR head: major type and argument, in its shortest form. Returns the next position. */
function writeHead(out: Uint8Array, pos: number, major: number, n: number): number {
  const m = major << 5
  if (n < 24) {
    out[pos] = m | n
    return pos + 1
  }
  if (n < 0x100) {
    out[pos] = m | 24
    out[pos + 1] = n
    return pos + 2
  }
  if (n < 0x10000) {
    out[pos] = m | 25
    out[pos + 1] = n >>> 8
    out[pos + 2] = n & 0xff
    return pos + 3
  }
  if (n < 0x1_0000_0000) {
    out[pos] = m | 26
    writeUint32(out, pos + 1, n)
    return pos + 5
  }
  out[pos] = m | 27
  writeUint32(out, pos + 1, Math.floor(n / 0x1_0000_0000))
  writeUint32(out, pos + 5, n >>> 0)
  return pos + 9
}

function writeUint32(out: Uint8Array, pos: number, n: number): void {
  out[pos] = n >>> 24
  out[pos + 1] = (n >>> 16) & 0xff
  out[pos + 2] = (n >>> 8) & 0xff
  out[pos + 3] = n & 0xff
}

/** Writes a value `plainSize` accepted. Returns the next position. */
function writePlain(out: Uint8Array, pos: number, v: unknown): number {
  if (typeof v === 'number') return writeHead(out, pos, 0, v)
  if (v instanceof Uint8Array) {
    const at = writeHead(out, pos, 2, v.byteLength)
    out.set(v, at)
    return at + v.byteLength
  }
  if (typeof v === 'string') {
    let at = writeHead(out, pos, 3, v.length)
    for (let i = 0; i < v.length; i++) out[at++] = v.charCodeAt(i)
    return at
  }
  const items = v as unknown[]
  let at = writeHead(out, pos, 4, items.length)
  for (let i = 0; i < items.length; i++) at = writePlain(out, at, items[i])
  return at
}

const DECODE_OPTIONS = {
  strict: true,
  allowUndefined: false,
  allowIndefinite: false,
  allowNaN: false,
  allowInfinity: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
  useMaps: false,
} as const

/**
 * Decode untrusted bytes: minimal integers and lengths, nothing indefinite, no undefined, NaN,
 * infinities or big integers, else RecordError('REJECT', 'BAD_ENCODING'). Not yet proof of the one
 * canonical form (an integer may still come as a float): `decodeCanonical` checks that, or the
 * caller does by re-encoding what it read (`decodeBlock`).
 */
export function decodeStrict(bytes: Uint8Array, maxBytes: number): unknown {
  if (bytes.byteLength > maxBytes) {
    throw new RecordError('REJECT', 'OVERSIZED', { bytes: bytes.byteLength, max: maxBytes })
  }
  try {
    return decode(bytes, DECODE_OPTIONS)
  } catch (err) {
    throw new RecordError('REJECT', 'BAD_ENCODING', { reason: (err as Error).message.slice(0, 120) })
  }
}

/**
 * Decode untrusted bytes. Throws RecordError('REJECT', 'BAD_ENCODING') for anything that is not the
 * one canonical encoding of a value, so every record has exactly one byte form (and one message id).
 */
export function decodeCanonical(bytes: Uint8Array, maxBytes: number): unknown {
  const value = decodeStrict(bytes, maxBytes)
  let again: Uint8Array
  try {
    again = encodeCanonical(value)
  } catch {
    throw new RecordError('REJECT', 'BAD_ENCODING', { reason: 'not re-encodable' })
  }
  if (!equalBytes(again, bytes)) throw new RecordError('REJECT', 'BAD_ENCODING', { reason: 'not canonical' })
  return value
}

// Field readers for decoded arrays: each throws a typed BAD_FIELD error naming the field.
export function expectArray(v: unknown, field: string, length?: number): unknown[] {
  if (!Array.isArray(v) || (length !== undefined && v.length !== length)) {
    throw new RecordError('REJECT', 'BAD_FIELD', { field })
  }
  return v
}

export function expectUint(v: unknown, field: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
    throw new RecordError('REJECT', 'BAD_FIELD', { field })
  }
  return v
}

export function expectBytes(v: unknown, field: string, length: number): Uint8Array {
  if (!(v instanceof Uint8Array) || v.byteLength !== length) {
    throw new RecordError('REJECT', 'BAD_FIELD', { field })
  }
  return v
}
