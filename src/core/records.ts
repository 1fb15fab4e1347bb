import { concatBytes, equalBytes, packBytes, toHex, utf8 } from './bytes.js'
import { HASH_BYTES, PUBLIC_KEY_BYTES, SIGNATURE_BYTES, type Signer, sha256, verifySignature } from './crypto.js'
import { decodeCanonical, decodeStrict, encodeCanonical, expectArray, expectBytes, expectUint } from './encoding.js'
import { RecordError } from './errors.js'
import type { ChainConfig } from './params.js'
import { revealerOf } from './randao.js'

/** Domain tags: a signature made for one record type can never be replayed as another. */
export const DOMAIN = {
  reading: 'pos-peer/reading/v1',
  stake: 'pos-peer/stake/v2',
  transfer: 'pos-peer/transfer/v1',
  block: 'pos-peer/block/v4',
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
  /** The end of this announcement's RANDAO hash chain (src/core/randao.ts). */
  readonly commit: Uint8Array
  readonly signature: Uint8Array
  readonly id: Uint8Array
  readonly idHex: string
}

/** Tokens moved from one account to another, signed by the sender (docs/PROTOCOL.md section 6). */
export interface Transfer {
  readonly from: Uint8Array
  readonly to: Uint8Array
  readonly amount: number
  /** The sender's next nonce: 1 for its first transfer, then one more each time. */
  readonly nonce: number
  readonly signature: Uint8Array
  readonly id: Uint8Array
  readonly idHex: string
}

/**
 * A Casper FFG checkpoint: a block and an epoch (here an epoch is one slot). The genesis checkpoint
 * is (network id, 0); any other has `block.slot < epoch`.
 */
export interface Checkpoint {
  readonly hash: Uint8Array
  readonly epoch: number
}

/**
 * A block's signed header: everything the block hash covers, the records by their hash. Two of
 * them by one proposer are all the evidence an equivocation needs (a few hundred bytes).
 */
export interface BlockHeader {
  readonly height: number
  readonly slot: number
  readonly parent: Uint8Array
  readonly proposer: Uint8Array
  /** The FFG source of this block's vote: the highest justified checkpoint in its proposer's view. */
  readonly source: Checkpoint
  /** The proposer's next RANDAO preimage: sha256(reveal) is its point in the parent state. */
  readonly reveal: Uint8Array
  /** sha256 of the canonical encoding of [readings, stakes, transfers, evidence, votes]. */
  readonly bodyHash: Uint8Array
  readonly signature: Uint8Array
  /** sha256 of the canonical encoding of the header without its signature: the block hash. */
  readonly hash: Uint8Array
  readonly hashHex: string
}

/** Two signed headers of one proposer that break a slashing rule (docs/PROTOCOL.md section 5). */
export interface Evidence {
  readonly a: BlockHeader
  readonly b: BlockHeader
  /** sha256 of the evidence's encoding (lower header hash first): its identity. */
  readonly idHex: string
  readonly bytes: Uint8Array
}

export interface Block extends BlockHeader {
  readonly readings: readonly Reading[]
  readonly stakes: readonly StakeAnnouncement[]
  readonly transfers: readonly Transfer[]
  readonly evidence: readonly Evidence[]
  /**
   * The signed headers of the votes (blocks) that justified this block's source, as its proposer
   * saw them: every peer that imports the block counts them, so a view that missed those votes
   * (lost messages, a partition, a restart, a late join that syncs only the canonical chain) learns
   * the same justifications from the chain itself.
   */
  readonly votes: readonly BlockHeader[]
  /** The canonical wire encoding, signature included. */
  readonly bytes: Uint8Array
}

type ReadingTuple = [Uint8Array, number, number, Uint8Array]
type StakeTuple = [Uint8Array, number, number, Uint8Array, Uint8Array]

const readingTuple = (r: Reading): ReadingTuple => [r.author, r.bpm, r.time, r.signature]
const stakeTuple = (s: StakeAnnouncement): StakeTuple => [s.validator, s.stake, s.seq, s.commit, s.signature]
const transferTuple = (t: Transfer): unknown[] => [t.from, t.to, t.amount, t.nonce, t.signature]
const checkpointTuple = (c: Checkpoint): [Uint8Array, number] => [c.hash, c.epoch]
type UnsignedHeader = Omit<BlockHeader, 'signature' | 'hash' | 'hashHex'>
const headerFields = (h: UnsignedHeader): unknown[] => [
  h.height,
  h.slot,
  h.parent,
  h.proposer,
  checkpointTuple(h.source),
  h.reveal,
  h.bodyHash,
]
const headerTuple = (h: BlockHeader): unknown[] => [...headerFields(h), h.signature]
interface Body {
  readonly readings: readonly Reading[]
  readonly stakes: readonly StakeAnnouncement[]
  readonly transfers: readonly Transfer[]
  readonly evidence: readonly Evidence[]
  readonly votes: readonly BlockHeader[]
}
const bodyTuple = (b: Body): unknown[] => [
  b.readings.map(readingTuple),
  b.stakes.map(stakeTuple),
  b.transfers.map(transferTuple),
  b.evidence.map(evidenceTuple),
  b.votes.map(headerTuple),
]
function evidenceTuple(e: Evidence): unknown[] {
  return [headerTuple(e.a), headerTuple(e.b)]
}

/** The genesis checkpoint of a network: (network id, epoch 0). */
export const genesisCheckpoint = (net: ChainConfig): Checkpoint => ({ hash: net.id, epoch: 0 })
export const checkpointKey = (c: { readonly hash: Uint8Array; readonly epoch: number }): string =>
  `${toHex(c.hash)}@${c.epoch}`

function readingId(author: Uint8Array, bpm: number, time: number): Uint8Array {
  return sha256(encodeCanonical([DOMAIN.reading, author, bpm, time]))
}

function transferId(from: Uint8Array, to: Uint8Array, amount: number, nonce: number): Uint8Array {
  return sha256(encodeCanonical([DOMAIN.transfer, from, to, amount, nonce]))
}

function stakeId(validator: Uint8Array, stake: number, seq: number, commit: Uint8Array): Uint8Array {
  return sha256(encodeCanonical([DOMAIN.stake, validator, stake, seq, commit]))
}

export function createReading(net: ChainConfig, signer: Signer, bpm: number, time: number): Reading {
  const id = readingId(signer.publicKey, bpm, time)
  const signature = signer.sign(signingMessage('reading', net.id, id))
  return { author: signer.publicKey, bpm, time, signature, id, idHex: toHex(id) }
}

export function createStake(
  net: ChainConfig,
  signer: Signer,
  stake: number,
  seq: number,
  /** Default: the end of this key's RANDAO chain for `seq` (a bench may pass any 32 bytes). */
  commit: Uint8Array = revealerOf(net, signer).chain(seq).commit,
): StakeAnnouncement {
  const id = stakeId(signer.publicKey, stake, seq, commit)
  const signature = signer.sign(signingMessage('stake', net.id, id))
  return { validator: signer.publicKey, stake, seq, commit, signature, id, idHex: toHex(id) }
}

export function createTransfer(
  net: ChainConfig,
  signer: Signer,
  to: Uint8Array,
  amount: number,
  nonce: number,
): Transfer {
  const id = transferId(signer.publicKey, to, amount, nonce)
  const signature = signer.sign(signingMessage('transfer', net.id, id))
  return { from: signer.publicKey, to, amount, nonce, signature, id, idHex: toHex(id) }
}

export interface BlockContent {
  height: number
  slot: number
  parent: Uint8Array
  readings: readonly Reading[]
  stakes: readonly StakeAnnouncement[]
  transfers?: readonly Transfer[]
  /** Default: the genesis checkpoint (always valid; its vote counts only while genesis is the root). */
  source?: Checkpoint
  /** The RANDAO reveal; `proposeBlock` and the proposer compute it from the parent state. */
  reveal?: Uint8Array
  evidence?: readonly Evidence[]
  votes?: readonly BlockHeader[]
}

const ZERO_SIGNATURE = new Uint8Array(SIGNATURE_BYTES)

/**
 * A block with a placeholder signature: what the proposer checks (size, every rule but the
 * signature) before its slashing protection lets it sign (`signBlock`).
 */
export function unsignedBlock(net: ChainConfig, proposer: Uint8Array, content: BlockContent): Block {
  const body: Body = {
    readings: content.readings,
    stakes: content.stakes,
    transfers: content.transfers ?? [],
    evidence: content.evidence ?? [],
    votes: (content.votes ?? []).map(headerOf),
  }
  const header: HeaderContent = {
    height: content.height,
    slot: content.slot,
    parent: content.parent,
    proposer,
    source: content.source ?? genesisCheckpoint(net),
    reveal: content.reveal ?? new Uint8Array(HASH_BYTES),
  }
  return assemble(header, body, ZERO_SIGNATURE)
}

export function signBlock(net: ChainConfig, signer: Signer, b: Block): Block {
  if (!equalBytes(signer.publicKey, b.proposer)) throw new Error('signBlock: not the proposer')
  return assemble(b, b, signer.sign(signingMessage('block', net.id, b.hash)))
}

export function createBlock(net: ChainConfig, signer: Signer, content: BlockContent): Block {
  return signBlock(net, signer, unsignedBlock(net, signer.publicKey, content))
}

/** A header's fields but the body hash, which `assemble` computes. */
type HeaderContent = Omit<UnsignedHeader, 'bodyHash'>
/** The CBOR head of the body's 5-array, and the signature's length in a block's encoding (its head and bytes). */
const BODY_HEAD = new Uint8Array([0x85])
const SIGNATURE_ENCODED = 2 + SIGNATURE_BYTES

/**
 * The block of these fields, encoded once: a block is [6 header fields, the body's 5 parts,
 * signature], so the body's own encoding (what `bodyHash` hashes) is the 5-array head and the
 * block's bytes between its header fields and its signature.
 */
function assemble(h: HeaderContent, body: Body, signature: Uint8Array): Block {
  if (signature.byteLength !== SIGNATURE_BYTES) throw new RangeError('assemble: a signature is 64 bytes')
  const { height, slot, parent, proposer, source, reveal } = h
  const head = [height, slot, parent, proposer, checkpointTuple(source), reveal]
  const bytes = encodeCanonical([...head, ...bodyTuple(body), signature])
  // The 12-array's head is one byte, as the 6-array's: the body starts where `head` ends.
  const bodyStart = encodeCanonical(head).byteLength
  const bodyHash = sha256(BODY_HEAD, bytes.subarray(bodyStart, bytes.byteLength - SIGNATURE_ENCODED))
  const hash = sha256(encodeCanonical(headerFields({ ...h, bodyHash })))
  const { readings, stakes, transfers, evidence, votes } = body
  return {
    height,
    slot,
    parent,
    proposer,
    source,
    reveal,
    bodyHash,
    readings,
    stakes,
    transfers,
    evidence,
    votes,
    signature,
    hash,
    hashHex: toHex(hash),
    bytes,
  }
}

/** The signed header of a block (what evidence carries). */
export function headerOf(b: BlockHeader): BlockHeader {
  const { height, slot, parent, proposer, source, reveal, bodyHash, signature, hash, hashHex } = b
  return { height, slot, parent, proposer, source, reveal, bodyHash, signature, hash, hashHex }
}

/** Evidence from two headers (any order: it is stored lower hash first, so it has one form). */
export function createEvidence(x: BlockHeader, y: BlockHeader): Evidence {
  const [a, b] = x.hashHex < y.hashHex ? [headerOf(x), headerOf(y)] : [headerOf(y), headerOf(x)]
  const bytes = encodeCanonical([headerTuple(a), headerTuple(b)])
  return { a, b, idHex: toHex(sha256(bytes)), bytes }
}

export const encodeReading = (r: Reading): Uint8Array => encodeCanonical(readingTuple(r))
export const encodeEvidence = (e: Evidence): Uint8Array => e.bytes
export const encodeStake = (s: StakeAnnouncement): Uint8Array => encodeCanonical(stakeTuple(s))
export const encodeTransfer = (t: Transfer): Uint8Array => encodeCanonical(transferTuple(t))

function readingFromTuple(v: unknown, field: string): Reading {
  const [a, bpm, time, sig] = expectArray(v, field, 4)
  const r = {
    author: expectBytes(a, `${field}.author`, PUBLIC_KEY_BYTES),
    bpm: expectUint(bpm, `${field}.bpm`),
    time: expectUint(time, `${field}.time`),
    signature: expectBytes(sig, `${field}.signature`, SIGNATURE_BYTES),
  }
  const id = readingId(r.author, r.bpm, r.time)
  const [author, signature, packedId] = packBytes(r.author, r.signature, id)
  return { ...r, author, signature, id: packedId, idHex: toHex(id) }
}

function stakeFromTuple(v: unknown, field: string): StakeAnnouncement {
  const [val, stake, seq, commit, sig] = expectArray(v, field, 5)
  const s = {
    validator: expectBytes(val, `${field}.validator`, PUBLIC_KEY_BYTES),
    stake: expectUint(stake, `${field}.stake`),
    seq: expectUint(seq, `${field}.seq`),
    commit: expectBytes(commit, `${field}.commit`, HASH_BYTES),
    signature: expectBytes(sig, `${field}.signature`, SIGNATURE_BYTES),
  }
  const id = stakeId(s.validator, s.stake, s.seq, s.commit)
  const packed = packBytes(s.validator, s.commit, s.signature, id)
  return { ...s, validator: packed[0], commit: packed[1], signature: packed[2], id: packed[3], idHex: toHex(id) }
}

function transferFromTuple(v: unknown, field: string): Transfer {
  const [from, to, amount, nonce, sig] = expectArray(v, field, 5)
  const t = {
    from: expectBytes(from, `${field}.from`, PUBLIC_KEY_BYTES),
    to: expectBytes(to, `${field}.to`, PUBLIC_KEY_BYTES),
    amount: expectUint(amount, `${field}.amount`),
    nonce: expectUint(nonce, `${field}.nonce`),
    signature: expectBytes(sig, `${field}.signature`, SIGNATURE_BYTES),
  }
  const id = transferId(t.from, t.to, t.amount, t.nonce)
  const [fromKey, toKey, signature, packedId] = packBytes(t.from, t.to, t.signature, id)
  return { ...t, from: fromKey, to: toKey, signature, id: packedId, idHex: toHex(id) }
}

/** Size limit for a single reading, stake announcement or transfer on the wire. */
export const MAX_RECORD_BYTES = 256

/**
 * The author of an encoded reading without decoding it (its canonical encoding starts with a
 * 4-array and the author's 32 bytes), or undefined. A hint for ordering work only: it checks
 * nothing, and the reading is decoded and validated as any other.
 */
export function peekReadingAuthor(bytes: Uint8Array): Uint8Array | undefined {
  if (
    bytes.byteLength < 3 + PUBLIC_KEY_BYTES ||
    bytes[0] !== 0x84 ||
    bytes[1] !== 0x58 ||
    bytes[2] !== PUBLIC_KEY_BYTES
  )
    return undefined
  return bytes.subarray(3, 3 + PUBLIC_KEY_BYTES)
}

export function decodeReading(bytes: Uint8Array): Reading {
  return readingFromTuple(decodeCanonical(bytes, MAX_RECORD_BYTES), 'reading')
}

export function decodeStake(bytes: Uint8Array): StakeAnnouncement {
  return stakeFromTuple(decodeCanonical(bytes, MAX_RECORD_BYTES), 'stake')
}

export function decodeTransfer(bytes: Uint8Array): Transfer {
  return transferFromTuple(decodeCanonical(bytes, MAX_RECORD_BYTES), 'transfer')
}

function checkpointFromTuple(v: unknown, field: string): Checkpoint {
  const [hash, epoch] = expectArray(v, field, 2)
  return { hash: expectBytes(hash, `${field}.hash`, HASH_BYTES), epoch: expectUint(epoch, `${field}.epoch`) }
}

function headerFromTuple(v: unknown, field: string): BlockHeader {
  const t = expectArray(v, field, 8)
  const h: UnsignedHeader = {
    height: expectUint(t[0], `${field}.height`),
    slot: expectUint(t[1], `${field}.slot`),
    parent: expectBytes(t[2], `${field}.parent`, HASH_BYTES),
    proposer: expectBytes(t[3], `${field}.proposer`, PUBLIC_KEY_BYTES),
    source: checkpointFromTuple(t[4], `${field}.source`),
    reveal: expectBytes(t[5], `${field}.reveal`, HASH_BYTES),
    bodyHash: expectBytes(t[6], `${field}.bodyHash`, HASH_BYTES),
  }
  const signature = expectBytes(t[7], `${field}.signature`, SIGNATURE_BYTES)
  const hash = sha256(encodeCanonical(headerFields(h)))
  return { ...h, signature, hash, hashHex: toHex(hash) }
}

function evidenceFromTuple(v: unknown, field: string): Evidence {
  const [a, b] = expectArray(v, field, 2)
  const e = createEvidence(headerFromTuple(a, `${field}.a`), headerFromTuple(b, `${field}.b`))
  return e
}

/** Size limit of one evidence record on the wire (two headers). */
export const MAX_EVIDENCE_BYTES = 1024

/** Evidence from untrusted bytes; it must be in its one form (lower header hash first). */
export function decodeEvidence(bytes: Uint8Array): Evidence {
  const e = evidenceFromTuple(decodeCanonical(bytes, MAX_EVIDENCE_BYTES), 'evidence')
  if (!equalBytes(e.bytes, bytes)) throw new RecordError('REJECT', 'BAD_ENCODING', { reason: 'evidence order' })
  return e
}

/**
 * Decode a block from untrusted bytes: a typed Block or a RecordError. Counts are bounded by the
 * network limits before any record is looked at.
 */
export function decodeBlock(net: ChainConfig, bytes: Uint8Array): Block {
  const p = net.params
  // Decoded strictly, and checked canonical once, at the end: the block encoded from what was read
  // must be these bytes (re-encoding here as well, and again for the body hash, cost 1.5-3 ms of a
  // full block's 12: docs/PERFORMANCE.md, bench:codec).
  const v = expectArray(decodeStrict(bytes, p.maxBlockBytes), 'block', 12)
  const rawReadings = expectArray(v[6], 'readings')
  const rawStakes = expectArray(v[7], 'stakes')
  const rawTransfers = expectArray(v[8], 'transfers')
  const rawEvidence = expectArray(v[9], 'evidence')
  const rawVotes = expectArray(v[10], 'votes')
  if (
    rawVotes.length > p.maxVotesPerBlock ||
    rawReadings.length > p.maxReadingsPerBlock ||
    rawStakes.length > p.maxStakesPerBlock ||
    rawTransfers.length > p.maxTransfersPerBlock ||
    rawEvidence.length > p.maxEvidencePerBlock
  ) {
    throw new RecordError('REJECT', 'OVERSIZED', {
      readings: rawReadings.length,
      stakes: rawStakes.length,
      transfers: rawTransfers.length,
      evidence: rawEvidence.length,
      votes: rawVotes.length,
    })
  }
  const readings = rawReadings.map((r, i) => readingFromTuple(r, `readings[${i}]`))
  const stakes = rawStakes.map((s, i) => stakeFromTuple(s, `stakes[${i}]`))
  const evidence = rawEvidence.map((e, i) => evidenceFromTuple(e, `evidence[${i}]`))
  const body: Body = {
    readings,
    stakes,
    transfers: rawTransfers.map((t, i) => transferFromTuple(t, `transfers[${i}]`)),
    evidence,
    votes: rawVotes.map((h, i) => headerFromTuple(h, `votes[${i}]`)),
  }
  const header: HeaderContent = {
    height: expectUint(v[0], 'height'),
    slot: expectUint(v[1], 'slot'),
    parent: expectBytes(v[2], 'parent', HASH_BYTES),
    proposer: expectBytes(v[3], 'proposer', PUBLIC_KEY_BYTES),
    source: checkpointFromTuple(v[4], 'source'),
    reveal: expectBytes(v[5], 'reveal', HASH_BYTES),
  }
  const block = assemble(header, body, expectBytes(v[11], 'signature', SIGNATURE_BYTES))
  // Evidence is re-encoded in its one form: a block carrying another order is not this encoding.
  if (!equalBytes(block.bytes, bytes)) throw new RecordError('REJECT', 'BAD_ENCODING', { reason: 'not canonical' })
  return block
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
const transferCheck = (net: ChainConfig, t: Transfer): SignatureCheck => ({
  publicKey: t.from,
  message: signingMessage('transfer', net.id, t.id),
  signature: t.signature,
})
const blockCheck = (net: ChainConfig, b: BlockHeader): SignatureCheck => ({
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

export function verifyTransferSignature(net: ChainConfig, t: Transfer): boolean {
  return verifyCheck(transferCheck(net, t))
}

export function verifyBlockSignature(net: ChainConfig, b: BlockHeader): boolean {
  return verifyCheck(blockCheck(net, b))
}

/** Every signature check that validating `b` performs: the block's, then its records'. */
export function signatureChecks(net: ChainConfig, b: Block): SignatureCheck[] {
  return [
    blockCheck(net, b),
    ...b.readings.map((r) => readingCheck(net, r)),
    ...b.stakes.map((st) => stakeCheck(net, st)),
    ...b.transfers.map((t) => transferCheck(net, t)),
    ...b.evidence.flatMap((e) => [blockCheck(net, e.a), blockCheck(net, e.b)]),
    ...b.votes.map((h) => blockCheck(net, h)),
  ]
}
