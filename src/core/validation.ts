import { equalBytes, toHex } from './bytes.js'
import { BlockError, RecordError } from './errors.js'
import { type Network, slotStart } from './params.js'
import { type Block, checkReading, checkStake, verifyBlockSignature } from './records.js'
import { activeStake, applyBlock, type ChainState } from './state.js'

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
}

export interface ValidBlock {
  readonly state: ChainState
  /** The proposer's lottery and vote weight for this block. */
  readonly weight: number
}

/**
 * Every consensus rule of docs/PROTOCOL.md ("Block validity"). Returns the post-state and the
 * proposer's weight, or throws a BlockError naming the rule.
 */
export function validateBlock(net: Network, block: Block, ctx: ValidationContext): ValidBlock {
  const p = net.params
  if (ctx.expectedHash !== undefined && !equalBytes(ctx.expectedHash, block.hash)) {
    throw new BlockError('REJECT', 'HASH_MISMATCH', { expected: toHex(ctx.expectedHash), got: block.hashHex })
  }
  if (block.bytes.byteLength > p.maxBlockBytes) {
    throw new BlockError('REJECT', 'OVERSIZED', { bytes: block.bytes.byteLength, max: p.maxBlockBytes })
  }
  if (block.readings.length > p.maxReadingsPerBlock || block.stakes.length > p.maxStakesPerBlock) {
    throw new BlockError('REJECT', 'TOO_MANY_RECORDS', { readings: block.readings.length, stakes: block.stakes.length })
  }
  const slotStartMs = slotStart(p, block.slot)
  if (slotStartMs > ctx.nowMs + p.maxClockDriftMs) {
    throw new BlockError('REJECT', 'FUTURE_SLOT', { slot: block.slot, aheadMs: slotStartMs - ctx.nowMs })
  }
  if (!verifyBlockSignature(net, block)) {
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

  const latestTime = slotStart(p, block.slot + 1) + p.maxClockDriftMs
  const ids = new Set<string>()
  for (const r of block.readings) {
    try {
      checkReading(net, r)
    } catch (err) {
      throw asBlockError(err, r.idHex)
    }
    if (r.time > latestTime) {
      throw new BlockError('REJECT', 'TIME_OUT_OF_RANGE', { reading: r.idHex, time: r.time, latest: latestTime })
    }
    if (ids.has(r.idHex)) throw new BlockError('REJECT', 'DUPLICATE_IN_BLOCK', { record: 'reading', reading: r.idHex })
    ids.add(r.idHex)
    if (ctx.readingInChain(r.idHex)) {
      throw new BlockError('REJECT', 'READING_ALREADY_IN_CHAIN', { reading: r.idHex })
    }
  }
  for (const s of block.stakes) {
    try {
      checkStake(net, s)
    } catch (err) {
      throw asBlockError(err, s.idHex)
    }
  }

  const proposer = toHex(block.proposer)
  let weight = activeStake(p, parent.state, proposer, block.slot)
  if (weight === 0) {
    // The join rule: a validator not (or no longer) in the table may propose with its own announcement.
    const own = block.stakes.find((s) => equalBytes(s.validator, block.proposer))
    weight = own?.stake ?? 0
  }
  if (weight === 0) throw new BlockError('REJECT', 'NO_WEIGHT', { proposer })

  const state = applyBlock(p, parent.state, block)
  return { state, weight }
}

function asBlockError(err: unknown, record: string): BlockError {
  if (err instanceof RecordError) return new BlockError(err.action, err.code, { ...err.details, record })
  throw err
}
