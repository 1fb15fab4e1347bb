import { concatBytes, toHex, utf8 } from './bytes.js'
import {
  addressOf,
  HASH_BYTES,
  PUBLIC_KEY_BYTES,
  SIGNATURE_BYTES,
  type Signer,
  sha256,
  verifySignature,
} from './crypto.js'
import { decodeCanonical, encodeCanonical, expectArray, expectBytes, expectUint } from './encoding.js'
import { RecordError } from './errors.js'
import type { ChainConfig } from './params.js'

/** Domain tags: a signature made for one record type can never be replayed as another. */
export const DOMAIN = {
  reading: 'pos-peer/reading/v1',
  stake: 'pos-peer/stake/v1',
  block: 'pos-peer/block/v1',
} as const

export type Domain = keyof typeof DOMAIN

/** The bytes an author signs: tag, a zero byte, the network id, then the record hash. */
export function signingMessage(domain: Domain, networkId: Uint8Array, hash: Uint8Array): Uint8Array {
  return concatBytes(utf8(DOMAIN[domain]), new Uint8Array([0]), networkId, hash)
}

export interface Reading {
  readonly author: Uint8Array
  readonly bpm: number
  readonly time: number
  readonly signature: Uint8Array
  /** sha256 of the unsigned fields: the reading's identity (at most once per chain). */
  readonly id: Uint8Array
  readonly idHex: string
}

export interface StakeAnnouncement {
  readonly validator: Uint8Array
  readonly stake: number
  readonly seq: number
  readonly signature: Uint8Array
  readonly id: Uint8Array
  readonly idHex: string
}

export interface Block {
  readonly height: number
  readonly slot: number
  readonly parent: Uint8Array
  readonly proposer: Uint8Array
  readonly readings: readonly Reading[]
  readonly stakes: readonly StakeAnnouncement[]
  readonly signature: Uint8Array
  /** sha256 of the canonical encoding of every field except the signature. */
  readonly hash: Uint8Array
  readonly hashHex: string
  /** The canonical wire encoding, signature included. */
  readonly bytes: Uint8Array
}

type ReadingTuple = [Uint8Array, number, number, Uint8Array]
type StakeTuple = [Uint8Array, number, number, Uint8Array]

const readingTuple = (r: Reading): ReadingTuple => [r.author, r.bpm, r.time, r.signature]
const stakeTuple = (s: StakeAnnouncement): StakeTuple => [s.validator, s.stake, s.seq, s.signature]

function readingId(author: Uint8Array, bpm: number, time: number): Uint8Array {
  return sha256(encodeCanonical([DOMAIN.reading, author, bpm, time]))
}

function stakeId(validator: Uint8Array, stake: number, seq: number): Uint8Array {
  return sha256(encodeCanonical([DOMAIN.stake, validator, stake, seq]))
}

function blockBody(b: Omit<Block, 'signature' | 'hash' | 'hashHex' | 'bytes'>): unknown[] {
  return [b.height, b.slot, b.parent, b.proposer, b.readings.map(readingTuple), b.stakes.map(stakeTuple)]
}

export function createReading(net: ChainConfig, signer: Signer, bpm: number, time: number): Reading {
  const id = readingId(signer.publicKey, bpm, time)
  const signature = signer.sign(signingMessage('reading', net.id, id))
  return { author: signer.publicKey, bpm, time, signature, id, idHex: toHex(id) }
}

export function createStake(net: ChainConfig, signer: Signer, stake: number, seq: number): StakeAnnouncement {
  const id = stakeId(signer.publicKey, stake, seq)
  const signature = signer.sign(signingMessage('stake', net.id, id))
  return { validator: signer.publicKey, stake, seq, signature, id, idHex: toHex(id) }
}

export interface BlockContent {
  height: number
  slot: number
  parent: Uint8Array
  readings: readonly Reading[]
  stakes: readonly StakeAnnouncement[]
}

export function createBlock(net: ChainConfig, signer: Signer, content: BlockContent): Block {
  const unsigned = { ...content, proposer: signer.publicKey }
  const body = blockBody(unsigned)
  const hash = sha256(encodeCanonical(body))
  const signature = signer.sign(signingMessage('block', net.id, hash))
  const bytes = encodeCanonical([...body, signature])
  return { ...unsigned, signature, hash, hashHex: toHex(hash), bytes }
}

export const encodeReading = (r: Reading): Uint8Array => encodeCanonical(readingTuple(r))
export const encodeStake = (s: StakeAnnouncement): Uint8Array => encodeCanonical(stakeTuple(s))

function readingFromTuple(v: unknown, field: string): Reading {
  const [a, bpm, time, sig] = expectArray(v, field, 4)
  const author = expectBytes(a, `${field}.author`, PUBLIC_KEY_BYTES)
  const r = {
    author,
    bpm: expectUint(bpm, `${field}.bpm`),
    time: expectUint(time, `${field}.time`),
    signature: expectBytes(sig, `${field}.signature`, SIGNATURE_BYTES),
  }
  const id = readingId(r.author, r.bpm, r.time)
  return { ...r, id, idHex: toHex(id) }
}

function stakeFromTuple(v: unknown, field: string): StakeAnnouncement {
  const [val, stake, seq, sig] = expectArray(v, field, 4)
  const s = {
    validator: expectBytes(val, `${field}.validator`, PUBLIC_KEY_BYTES),
    stake: expectUint(stake, `${field}.stake`),
    seq: expectUint(seq, `${field}.seq`),
    signature: expectBytes(sig, `${field}.signature`, SIGNATURE_BYTES),
  }
  const id = stakeId(s.validator, s.stake, s.seq)
  return { ...s, id, idHex: toHex(id) }
}

/** Size limit for a single reading or stake announcement on the wire. */
export const MAX_RECORD_BYTES = 256

export function decodeReading(bytes: Uint8Array): Reading {
  return readingFromTuple(decodeCanonical(bytes, MAX_RECORD_BYTES), 'reading')
}

export function decodeStake(bytes: Uint8Array): StakeAnnouncement {
  return stakeFromTuple(decodeCanonical(bytes, MAX_RECORD_BYTES), 'stake')
}

/**
 * Decode a block from untrusted bytes: a typed Block or a RecordError. Counts are bounded by the
 * network limits before any record is looked at.
 */
export function decodeBlock(net: ChainConfig, bytes: Uint8Array): Block {
  const p = net.params
  const v = expectArray(decodeCanonical(bytes, p.maxBlockBytes), 'block', 7)
  const rawReadings = expectArray(v[4], 'readings')
  const rawStakes = expectArray(v[5], 'stakes')
  if (rawReadings.length > p.maxReadingsPerBlock || rawStakes.length > p.maxStakesPerBlock) {
    throw new RecordError('REJECT', 'OVERSIZED', { readings: rawReadings.length, stakes: rawStakes.length })
  }
  const partial = {
    height: expectUint(v[0], 'height'),
    slot: expectUint(v[1], 'slot'),
    parent: expectBytes(v[2], 'parent', HASH_BYTES),
    proposer: expectBytes(v[3], 'proposer', PUBLIC_KEY_BYTES),
    readings: rawReadings.map((r, i) => readingFromTuple(r, `readings[${i}]`)),
    stakes: rawStakes.map((s, i) => stakeFromTuple(s, `stakes[${i}]`)),
  }
  const signature = expectBytes(v[6], 'signature', SIGNATURE_BYTES)
  const hash = sha256(encodeCanonical(blockBody(partial)))
  return { ...partial, signature, hash, hashHex: toHex(hash), bytes }
}

/** One Ed25519 check: what verifySignature is called with. */
export interface SignatureCheck {
  readonly publicKey: Uint8Array
  readonly message: Uint8Array
  readonly signature: Uint8Array
}

const readingCheck = (net: ChainConfig, r: Reading): SignatureCheck => ({
  publicKey: r.author,
  message: signingMessage('reading', net.id, r.id),
  signature: r.signature,
})
const stakeCheck = (net: ChainConfig, s: StakeAnnouncement): SignatureCheck => ({
  publicKey: s.validator,
  message: signingMessage('stake', net.id, s.id),
  signature: s.signature,
})
const blockCheck = (net: ChainConfig, b: Block): SignatureCheck => ({
  publicKey: b.proposer,
  message: signingMessage('block', net.id, b.hash),
  signature: b.signature,
})
const verifyCheck = (c: SignatureCheck) => verifySignature(c.publicKey, c.message, c.signature)

export function verifyReadingSignature(net: ChainConfig, r: Reading): boolean {
  return verifyCheck(readingCheck(net, r))
}

export function verifyStakeSignature(net: ChainConfig, s: StakeAnnouncement): boolean {
  return verifyCheck(stakeCheck(net, s))
}

export function verifyBlockSignature(net: ChainConfig, b: Block): boolean {
  return verifyCheck(blockCheck(net, b))
}

/** Every signature check that validating `b` performs: the block's, then its records'. */
export function signatureChecks(net: ChainConfig, b: Block): SignatureCheck[] {
  return [
    blockCheck(net, b),
    ...b.readings.map((r) => readingCheck(net, r)),
    ...b.stakes.map((st) => stakeCheck(net, st)),
  ]
}

/** JSON view of records for the CLI, HTTP and logs (never used for hashing). */
export function readingJson(r: Reading) {
  return { id: r.idHex, author: addressOf(r.author), bpm: r.bpm, time: r.time }
}
