import { equalBytes, toHex } from './bytes.js'
import { BlockError, type ErrorAction, RecordError } from './errors.js'
import { type ChainConfig, MAX_SUPPLY, type NetworkParams, slotStart } from './params.js'
import {
  type Block,
  type BlockHeader,
  type Evidence,
  type Reading,
  type StakeAnnouncement,
  type Transfer,
  verifyBlockSignature,
  verifyReadingSignature,
  verifyStakeSignature,
  verifyTransferSignature,
} from './records.js'
import { activeStake, applyBlock, type ChainState, countedStake, hasActiveStake } from './state.js'

/** What validation needs to know about the parent block. */
export interface ParentInfo {
  readonly height: number
  readonly slot: number
  readonly state: ChainState
}

export interface ValidationContext {
  /** The parent, or undefined when it is unknown (the caller fetches it and retries). */
  readonly parent: ParentInfo | undefined
  /** Local clock, unix ms. Injected so the core never reads the wall clock. */
  readonly nowMs: number
  /** True when the reading id is already in the chain below this block's parent (inclusive). */
  readonly readingInChain: (idHex: string) => boolean
  /** When the block was fetched by hash, the hash asked for. */
  readonly expectedHash?: Uint8Array
  /**
   * Where the block's FFG source is, as the tree sees it: 'ok' (the parent or one of its ancestors,
   * and a valid checkpoint of that block), 'bad' (on that path but not a checkpoint of it),
   * 'stale' (not on the path, at or below our finalized epoch), 'unknown' (not on the path, above
   * it). Default 'ok' (a block checked outside a tree).
   */
  readonly sourceCheck?: (source: Block['source']) => 'ok' | 'bad' | 'stale' | 'unknown'
  /** Our own candidate before signing: every rule but the signature. */
  readonly unsigned?: boolean
  /**
   * True when the block (hash hex) is the parent or one of its ancestors: in the tree, or one of
   * the recent final blocks (`participates` looks back at most PARTICIPATION_DEPTH blocks, so
   * every peer answers alike whatever its finalized height). Default: none is.
   */
  readonly onChain?: (hashHex: string) => boolean
  /**
   * The height and slot of block (hash hex) when it is the parent or one of its ancestors (in the
   * tree, or one of the recent final blocks), to place the block's FFG source (`sourceSlotOf`).
   * Default: none is.
   */
  readonly blockOnChain?: (hashHex: string) => { readonly height: number; readonly slot: number } | undefined
}

/**
 * How far back (blocks) a block's FFG source is looked up to record its slot in the state. Every
 * peer that can import the block (its finalized height is below it) finds a source this close
 * in its tree or among the RECENT_FINAL blocks below its root, so all record the same.
 */
export const SOURCE_DEPTH = 64

/**
 * True when `block` carries the proof of a link from its parent state's source to its own source
 * one epoch above (FFG's k = 1 rule: that link finalizes the parent's source): the votes among
 * its vote headers with the parent's source as source and the block's source as target (a block
 * of that epoch on the source's block) hold more than 2/3 of the stake counted in the parent
 * state at that epoch, one vote per validator. Only this moves what a chain shows final and ends a
 * stall: the source itself is any checkpoint of an ancestor, which a proposer could claim.
 */
export function linkProven(p: NetworkParams, block: Pick<Block, 'source' | 'votes'>, parent: ChainState): boolean {
  const target = block.source
  if (target.epoch !== parent.sourceEpoch + 1) return false
  const seen = new Set<string>()
  let voted = 0
  for (const h of block.votes) {
    const key = toHex(h.proposer)
    if (seen.has(key) || h.slot !== target.epoch || !equalBytes(h.parent, target.hash)) continue
    if (h.source.epoch !== parent.sourceEpoch || !equalBytes(h.source.hash, parent.sourceHash)) continue
    seen.add(key)
    voted += activeStake(p, parent, key, target.epoch)
  }
  if (voted === 0) return false
  const total = countedStake(p, parent, target.epoch)
  return 3 * voted > 2 * total
}

/**
 * The slot of a block's FFG source block as the state records it: looked up when at most
 * SOURCE_DEPTH blocks back; else the parent state's when the source epoch is the same (a stall
 * keeps its source); else 0 (unknown: the block then finalizes nothing, `finalSlotAfter`).
 */
export function sourceSlotOf(
  block: { readonly height: number; readonly source: Block['source'] },
  parent: ChainState,
  blockOnChain: (hashHex: string) => { readonly height: number; readonly slot: number } | undefined,
): number {
  const found = blockOnChain(toHex(block.source.hash))
  if (found !== undefined && found.height + SOURCE_DEPTH >= block.height) return found.slot
  return block.source.epoch === parent.sourceEpoch ? parent.sourceSlot : 0
}

/** How far back (blocks) a carried vote's target may be, and (in slots, twice that) its slot. */
export const PARTICIPATION_DEPTH = 32

/**
 * Whether a vote carried in `block` records its proposer as taking part (for the inactivity leak):
 * a vote of an earlier, recent slot, with the block's own source, whose target (its parent) is on
 * the block's chain at most PARTICIPATION_DEPTH blocks back. Such a vote is one that helps justify
 * this chain; a vote with an old source or for another chain is not.
 */
export function participates(
  h: BlockHeader,
  block: { readonly height: number; readonly slot: number; readonly source: Block['source'] },
  onChain: (hashHex: string) => boolean,
): boolean {
  return (
    h.slot < block.slot &&
    h.slot + 2 * PARTICIPATION_DEPTH >= block.slot &&
    h.height - 1 >= block.height - 1 - PARTICIPATION_DEPTH &&
    h.height <= block.height &&
    h.source.epoch === block.source.epoch &&
    equalBytes(h.source.hash, block.source.hash) &&
    onChain(toHex(h.parent))
  )
}

export interface ValidBlock {
  readonly state: ChainState
  /** The proposer's lottery and vote weight for this block. */
  readonly weight: number
}

/** The BPM rule: undefined when `bpm` is acceptable, else what is wrong, in words for a user. */
export function bpmProblem(p: NetworkParams, bpm: number): string | undefined {
  if (Number.isSafeInteger(bpm) && bpm >= p.minBpm && bpm <= p.maxBpm) return undefined
  return `${bpm} is out of range: BPM must be a whole number from ${p.minBpm} to ${p.maxBpm}`
}

/**
 * The one reading check, used for a reading typed here, one from gossip and one in a block: BPM in
 * range, time not after `latestTimeMs` (the caller's bound: see docs/PROTOCOL.md), signature.
 * Cheapest checks first, so junk never costs a signature verification.
 */
/** The times a reading may carry where it is checked: in a block of a slot, or now. */
export interface ReadingWindow {
  readonly earliest: number
  readonly latest: number
}

export function validateReading(
  net: ChainConfig,
  r: Reading,
  window: ReadingWindow,
  /** REJECT in a block (the bounds follow from its slot); IGNORE against the local clock. */
  lateAction: ErrorAction = 'REJECT',
): void {
  const p = net.params
  const problem = bpmProblem(p, r.bpm)
  if (problem !== undefined) {
    throw new RecordError('REJECT', 'BPM_OUT_OF_RANGE', { bpm: r.bpm, min: p.minBpm, max: p.maxBpm }, problem)
  }
  if (r.time > window.latest || r.time < window.earliest) {
    throw new RecordError(lateAction, 'TIME_OUT_OF_RANGE', {
      reading: r.idHex,
      time: r.time,
      earliest: window.earliest,
      latest: window.latest,
    })
  }
  if (!verifyReadingSignature(net, r)) throw new RecordError('REJECT', 'INVALID_SIGNATURE', { record: 'reading' })
}

/**
 * The times a gossiped (or typed) reading may carry when it arrives at `nowMs`: one that can still
 * go into the next slot's block.
 */
export function gossipReadingWindow(net: ChainConfig, nowMs: number): ReadingWindow {
  const p = net.params
  return { earliest: nowMs + p.slotMs - p.maxReadingAgeMs, latest: nowMs + p.maxClockDriftMs + p.slotMs }
}

/** The times a reading in a block of `slot` may carry. */
export function blockReadingWindow(net: ChainConfig, slot: number): ReadingWindow {
  const start = slotStart(net.params, slot)
  return {
    earliest: start - net.params.maxReadingAgeMs,
    latest: start + net.params.slotMs + net.params.maxClockDriftMs,
  }
}

/** The stateless check of a stake announcement: its signature. */
export function validateStake(net: ChainConfig, s: StakeAnnouncement): void {
  if (s.stake > net.params.maxStake)
    throw new RecordError('REJECT', 'STAKE_ABOVE_CAP', { stake: s.stake, max: net.params.maxStake })
  if (!verifyStakeSignature(net, s)) throw new RecordError('REJECT', 'INVALID_SIGNATURE', { record: 'stake' })
}

/**
 * The stateless check of a transfer: an amount of at least 1 within the supply limit, to another
 * account, signed by the sender. Whether the sender can pay is the state's question
 * (`transferProblem`).
 */
export function validateTransfer(net: ChainConfig, t: Transfer): void {
  if (t.amount < 1 || t.amount > MAX_SUPPLY || t.nonce < 1 || equalBytes(t.from, t.to)) {
    throw new RecordError('REJECT', 'BAD_TRANSFER', { transfer: t.idHex, amount: t.amount, nonce: t.nonce })
  }
  if (!verifyTransferSignature(net, t)) throw new RecordError('REJECT', 'INVALID_SIGNATURE', { record: 'transfer' })
}

/** A transfer's place in the canonical order of a block: by sender, then nonce. */
export const transferOrderKey = (t: Transfer): string => `${toHex(t.from)}:${t.nonce.toString().padStart(16, '0')}`

/** How two signed headers of one proposer conflict, if they do (docs/PROTOCOL.md section 5). */
export function conflictOf(a: BlockHeader, b: BlockHeader): 'double' | 'surround' | undefined {
  if (!equalBytes(a.proposer, b.proposer) || equalBytes(a.hash, b.hash)) return undefined
  if (a.slot === b.slot) return 'double'
  const surrounds = (x: BlockHeader, y: BlockHeader) => x.source.epoch < y.source.epoch && y.slot < x.slot
  return surrounds(a, b) || surrounds(b, a) ? 'surround' : undefined
}

/**
 * Slashing evidence: two headers by one proposer, both signed, that break a slashing rule (two
 * blocks in one slot, or one vote surrounding the other). Stateless: whether the offender still
 * has stake to lose is the block's (or the pool's) question.
 */
export function validateEvidence(net: ChainConfig, e: Evidence): void {
  if (conflictOf(e.a, e.b) === undefined) {
    throw new RecordError('REJECT', 'INVALID_EVIDENCE', { evidence: e.idHex, reason: 'no conflict' })
  }
  if (!verifyBlockSignature(net, e.a) || !verifyBlockSignature(net, e.b)) {
    throw new RecordError('REJECT', 'INVALID_SIGNATURE', { record: 'evidence', evidence: e.idHex })
  }
}

/**
 * Every consensus rule of docs/PROTOCOL.md ("Block validity"). Returns the post-state and the
 * proposer's weight, or throws a BlockError naming the rule.
 */
export function validateBlock(net: ChainConfig, block: Block, ctx: ValidationContext): ValidBlock {
  const p = net.params
  if (ctx.expectedHash !== undefined && !equalBytes(ctx.expectedHash, block.hash)) {
    throw new BlockError('REJECT', 'HASH_MISMATCH', { expected: toHex(ctx.expectedHash), got: block.hashHex })
  }
  if (block.bytes.byteLength > p.maxBlockBytes) {
    throw new BlockError('REJECT', 'OVERSIZED', { bytes: block.bytes.byteLength, max: p.maxBlockBytes })
  }
  if (
    block.readings.length > p.maxReadingsPerBlock ||
    block.stakes.length > p.maxStakesPerBlock ||
    block.transfers.length > p.maxTransfersPerBlock ||
    block.evidence.length > p.maxEvidencePerBlock ||
    block.votes.length > p.maxVotesPerBlock
  ) {
    throw new BlockError('REJECT', 'TOO_MANY_RECORDS', {
      readings: block.readings.length,
      stakes: block.stakes.length,
      transfers: block.transfers.length,
      evidence: block.evidence.length,
    })
  }
  const slotStartMs = slotStart(p, block.slot)
  if (slotStartMs > ctx.nowMs + p.maxClockDriftMs) {
    // Measured against our clock, which may be the wrong one: not proof of a bad sender.
    throw new BlockError('IGNORE', 'FUTURE_SLOT', { slot: block.slot, aheadMs: slotStartMs - ctx.nowMs })
  }
  if (ctx.unsigned !== true && !verifyBlockSignature(net, block)) {
    throw new BlockError('REJECT', 'INVALID_SIGNATURE', { record: 'block', hash: block.hashHex })
  }
  const parent = ctx.parent
  if (parent === undefined) {
    throw new BlockError('IGNORE', 'UNKNOWN_PARENT', { parent: toHex(block.parent), hash: block.hashHex })
  }
  if (block.height !== parent.height + 1) {
    throw new BlockError('REJECT', 'WRONG_HEIGHT', { height: block.height, parentHeight: parent.height })
  }
  if (block.slot <= parent.slot) {
    throw new BlockError('REJECT', 'SLOT_NOT_AFTER_PARENT', { slot: block.slot, parentSlot: parent.slot })
  }
  if (block.source.epoch >= block.slot) {
    throw new BlockError('REJECT', 'BAD_SOURCE', { epoch: block.source.epoch, slot: block.slot })
  }
  const where = ctx.sourceCheck?.(block.source) ?? 'ok'
  if (where === 'bad' || where === 'unknown') {
    // 'unknown' is a source above our finalized checkpoint that is not an ancestor: it conflicts
    // with our view, which may be the one that is behind, so it is not proof of a bad sender.
    throw new BlockError(where === 'bad' ? 'REJECT' : 'IGNORE', where === 'bad' ? 'BAD_SOURCE' : 'UNKNOWN_SOURCE', {
      source: toHex(block.source.hash),
      epoch: block.source.epoch,
    })
  }

  const window = blockReadingWindow(net, block.slot)
  const ids = new Set<string>()
  for (const r of block.readings) {
    try {
      validateReading(net, r, window)
    } catch (err) {
      throw asBlockError(err, r.idHex)
    }
    if (ids.has(r.idHex)) throw new BlockError('REJECT', 'DUPLICATE_IN_BLOCK', { record: 'reading', reading: r.idHex })
    ids.add(r.idHex)
    if (ctx.readingInChain(r.idHex)) {
      throw new BlockError('REJECT', 'READING_ALREADY_IN_CHAIN', { reading: r.idHex })
    }
  }
  for (const s of block.stakes) {
    try {
      validateStake(net, s)
    } catch (err) {
      throw asBlockError(err, s.idHex)
    }
  }
  for (const t of block.transfers) {
    try {
      validateTransfer(net, t)
    } catch (err) {
      throw asBlockError(err, t.idHex)
    }
  }

  for (const h of block.votes) {
    if (!verifyBlockSignature(net, h)) {
      throw new BlockError('REJECT', 'INVALID_SIGNATURE', { record: 'vote', vote: h.hashHex })
    }
  }
  const ascending = <T>(list: readonly T[], key: (x: T) => string, record: string) => {
    for (let i = 1; i < list.length; i++) {
      if (key(list[i - 1]) > key(list[i])) throw new BlockError('REJECT', 'NOT_CANONICAL_ORDER', { record, index: i })
    }
  }
  ascending(block.readings, (r) => r.idHex, 'reading')
  ascending(block.stakes, (s) => toHex(s.validator), 'stake')
  ascending(block.transfers, transferOrderKey, 'transfer')
  ascending(block.evidence, (e) => e.idHex, 'evidence')
  ascending(block.votes, (h) => h.hashHex, 'vote')
  const offenders = new Set<string>()
  for (const e of block.evidence) {
    try {
      validateEvidence(net, e)
    } catch (err) {
      throw asBlockError(err, e.idHex)
    }
    const key = toHex(e.a.proposer)
    if (offenders.has(key)) throw new BlockError('REJECT', 'DUPLICATE_IN_BLOCK', { record: 'evidence', validator: key })
    offenders.add(key)
  }

  const proposer = toHex(block.proposer)
  let weight = activeStake(p, parent.state, proposer, block.slot)
  if (weight === 0 && !hasActiveStake(p, parent.state, block.slot)) {
    // The join rule, only on a chain with no active stake at all (a fresh network, or one whose
    // every validator lapsed): a validator may propose with its own announcement. Elsewhere a
    // newcomer's announcement goes in through a validator's block, so a fresh key can never put
    // a block of its own into anyone's tree.
    const own = block.stakes.find((s) => equalBytes(s.validator, block.proposer))
    weight = own?.stake ?? 0
  }
  if (weight === 0) throw new BlockError('REJECT', 'NO_WEIGHT', { proposer })

  const onChain = ctx.onChain ?? (() => false)
  const voters = new Set(block.votes.filter((h) => participates(h, block, onChain)).map((h) => toHex(h.proposer)))
  const sourceSlot = sourceSlotOf(block, parent.state, ctx.blockOnChain ?? (() => undefined))
  const state = applyBlock(
    net,
    parent.state,
    block,
    parent.slot,
    voters,
    sourceSlot,
    linkProven(p, block, parent.state),
  )
  return { state, weight }
}

function asBlockError(err: unknown, record: string): BlockError {
  if (err instanceof RecordError) return new BlockError(err.action, err.code, { ...err.details, record })
  throw err
}
