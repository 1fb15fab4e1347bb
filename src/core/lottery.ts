import { compareBytes } from './bytes.js'
import { sha256Buffer } from './crypto.js'

/**
 * The stake-weighted lottery: an exponential race computed in integer arithmetic only.
 *
 * u = (first 8 bytes of sha256(parentHash || proposer) + 1) / 2^64, in (0, 1]
 * L = -ln(u) in fixed point with 64 fraction bits (a BigInt)
 * ticket = L / weight; the lowest ticket wins, compared exactly as L_a * w_b < L_b * w_a.
 *
 * See docs/PROTOCOL.md ("Lottery") for the derivation and test vectors.
 */

export const FRAC_BITS = 64n
const ONE = 1n << FRAC_BITS
// Guard bits used inside the series so the final result is exact to the last fixed-point bit.
const GUARD = 16n
const WIDE = FRAC_BITS + GUARD
const WIDE_ONE = 1n << WIDE

/** 2 * atanh(z) = ln((1+z)/(1-z)) for z = num/den in [0, 1), at WIDE scale, truncating. */
function twoAtanh(num: bigint, den: bigint): bigint {
  const z = (num << WIDE) / den
  const z2 = (z * z) >> WIDE
  let term = z
  let sum = 0n
  for (let k = 1n; term !== 0n; k += 2n) {
    sum += term / k
    term = (term * z2) >> WIDE
  }
  return 2n * sum
}

const LN2_WIDE = twoAtanh(1n, 3n)
// Range reduction table: ln((1024 + j) / 1024) for j = 0..1023, so the series only sees z < 1/2049.
const TABLE_BITS = 10n
const TABLE_SIZE = 1n << TABLE_BITS
const LN_TABLE: bigint[] = Array.from({ length: Number(TABLE_SIZE) }, (_, j) =>
  twoAtanh(BigInt(j), 2n * TABLE_SIZE + BigInt(j)),
)

function bitLength64(n: bigint): number {
  const hi = Number(n >> 32n)
  return hi > 0 ? 64 - Math.clz32(hi) : 32 - Math.clz32(Number(n))
}

/**
 * -ln(n / 2^64) for an integer n in [1, 2^64], as a fixed-point BigInt with 64 fraction bits.
 * Integer-only, so every platform computes the same bits.
 */
export function negLnFixed(n: bigint): bigint {
  if (n < 1n || n > ONE) throw new RangeError('negLnFixed takes an integer in [1, 2^64]')
  if (n === ONE) return 0n
  // n = m * 2^k with m in [1, 2) at WIDE scale; m = (1 + j/1024) * r with r in [1, 1 + 1/1024).
  const k = BigInt(bitLength64(n) - 1)
  const m = (n << WIDE) >> k
  const j = (m >> (WIDE - TABLE_BITS)) & (TABLE_SIZE - 1n)
  const r = (m * TABLE_SIZE) / (TABLE_SIZE + j)
  const lnM = LN_TABLE[Number(j)] + twoAtanh(r - WIDE_ONE, r + WIDE_ONE)
  // -ln(n / 2^64) = (64 - k) ln2 - ln(m)
  return ((FRAC_BITS - k) * LN2_WIDE - lnM) >> GUARD
}

// Scratch input for the draw hash: parent (32 bytes) || proposer (32 bytes), reused to avoid an
// allocation per candidate (ranking thousands of candidates is dominated by this hash).
const drawInput = Buffer.alloc(64)

/** The uniform draw of a proposer for a parent: an integer in [1, 2^64]. */
export function drawFor(parentHash: Uint8Array, proposer: Uint8Array): bigint {
  if (parentHash.byteLength !== 32 || proposer.byteLength !== 32)
    throw new RangeError('drawFor takes two 32-byte values')
  drawInput.set(parentHash, 0)
  drawInput.set(proposer, 32)
  return sha256Buffer(drawInput).readBigUInt64BE(0) + 1n
}

/** L = -ln(u) for this proposer on this parent (fixed point, 64 fraction bits). */
export function ticketFor(parentHash: Uint8Array, proposer: Uint8Array): bigint {
  return negLnFixed(drawFor(parentHash, proposer))
}

export interface Entrant {
  /** -ln(u) from ticketFor() (fixed point). */
  readonly ticket: bigint
  /** Positive integer stake weight. */
  readonly weight: number
  /** Block hash, the final tie-break. */
  readonly hash: Uint8Array
}

/** Negative when a's ticket ln_a / w_a is lower (better) than b's. */
export function compareEntrants(a: Entrant, b: Entrant): number {
  const lhs = a.ticket * BigInt(b.weight)
  const rhs = b.ticket * BigInt(a.weight)
  if (lhs !== rhs) return lhs < rhs ? -1 : 1
  return compareBytes(a.hash, b.hash)
}

/** The winner in O(n). */
export function lotteryWinner<T extends Entrant>(entrants: readonly T[]): T | undefined {
  let best: T | undefined
  for (const e of entrants) {
    if (best === undefined || compareEntrants(e, best) < 0) best = e
  }
  return best
}

/**
 * Full ranking, best first. Sorts on the truncated quotient floor(ln * 2^64 / weight), which orders
 * strictly whenever it differs, and falls back to the exact comparison only on equal quotients.
 */
export function rankEntrants<T extends Entrant>(entrants: readonly T[]): T[] {
  const keyed = entrants.map((e) => ({ e, q: (e.ticket << FRAC_BITS) / BigInt(e.weight) }))
  keyed.sort((a, b) => (a.q < b.q ? -1 : a.q > b.q ? 1 : compareEntrants(a.e, b.e)))
  return keyed.map((k) => k.e)
}
