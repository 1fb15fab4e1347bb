/** Small byte helpers shared by the core (hex for keys and logs, concatenation, comparison). */
export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('hex')
}

export function concatBytes(...parts: Uint8Array[]): Uint8Array {
  let length = 0
  for (const p of parts) length += p.byteLength
  const out = new Uint8Array(length)
  let offset = 0
  for (const p of parts) {
    out.set(p, offset)
    offset += p.byteLength
  }
  return out
}

/**
 * The parts copied into one buffer, returned as views of it: a decoded record keeps one buffer
 * instead of one per field (each buffer costs about 150 bytes of its own; a stake flood keeps tens
 * of thousands of records in non-final blocks).
 */
export function packBytes<T extends Uint8Array[]>(...parts: T): T {
  const all = concatBytes(...parts)
  let offset = 0
  return parts.map((p) => {
    const view = all.subarray(offset, offset + p.byteLength)
    offset += p.byteLength
    return view
  }) as T
}

/** Lexicographic comparison: negative when a < b. */
export function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.byteLength, b.byteLength)
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i] - b[i]
  }
  return a.byteLength - b.byteLength
}

export function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  return compareBytes(a, b) === 0
}

export const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s)
