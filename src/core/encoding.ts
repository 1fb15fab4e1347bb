import { decode, encode } from 'cborg'
import { equalBytes } from './bytes.js'
import { RecordError } from './errors.js'

/**
 * Deterministic CBOR: cborg's default encoder writes minimal integers and definite lengths.
 * Always its own buffer: cborg returns encodings of about 256 B to 4 KB as views into Node's
 * shared 8 KB Buffer pool, so each block, vote or state kept for long pinned a whole slab (a
 * stalled chain's 700 blocks held 6 MB of slabs for about 1 MB of bytes).
 */
export function encodeCanonical(value: unknown): Uint8Array {
  const bytes = encode(value)
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : new Uint8Array(bytes)
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
 * Decode untrusted bytes. Throws RecordError('REJECT', 'BAD_ENCODING') for anything that is not the
 * one canonical encoding of a value, so every record has exactly one byte form (and one message id).
 */
export function decodeCanonical(bytes: Uint8Array, maxBytes: number): unknown {
  if (bytes.byteLength > maxBytes) {
    throw new RecordError('REJECT', 'OVERSIZED', { bytes: bytes.byteLength, max: maxBytes })
  }
  let value: unknown
  try {
    value = decode(bytes, DECODE_OPTIONS)
  } catch (err) {
    throw new RecordError('REJECT', 'BAD_ENCODING', { reason: (err as Error).message.slice(0, 120) })
  }
  let again: Uint8Array
  try {
    again = encode(value)
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
