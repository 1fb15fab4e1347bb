/**
 * Typed validation errors. Every rule that can refuse a record throws one of these; one adapter
 * (network/gossip) turns the action into a gossip Accept/Ignore/Reject, a metric and a log line.
 */
export type ErrorAction = 'REJECT' | 'IGNORE'

/** What a received message gets: imported or kept (accept), dropped quietly (ignore), or punished (reject). */
export type Verdict = 'accept' | 'ignore' | 'reject'

export type RecordErrorCode =
  | 'BAD_ENCODING'
  | 'OVERSIZED'
  | 'BAD_FIELD'
  | 'INVALID_SIGNATURE'
  | 'BPM_OUT_OF_RANGE'
  | 'STAKE_ABOVE_CAP'
  | 'TIME_OUT_OF_RANGE'
  | 'STALE_SEQ'
  | 'SEQ_AHEAD'
  | 'TABLE_FULL'
  | 'FEE_UNPAID'
  | 'DUPLICATE'
  | 'INVALID_EVIDENCE'
  | 'SLASHED'
  | 'BAD_TRANSFER'
  | 'STALE_NONCE'
  | 'NONCE_GAP'
  | 'INSUFFICIENT_BALANCE'
  | 'AUTHOR_QUOTA'
  | 'POOL_FULL'

export type BlockErrorCode =
  | RecordErrorCode
  | 'UNKNOWN_PARENT'
  | 'WRONG_HEIGHT'
  | 'SLOT_NOT_AFTER_PARENT'
  | 'FUTURE_SLOT'
  | 'NO_WEIGHT'
  | 'HASH_MISMATCH'
  | 'READING_ALREADY_IN_CHAIN'
  | 'DUPLICATE_IN_BLOCK'
  | 'TOO_MANY_RECORDS'
  | 'BELOW_FINALIZED'
  | 'ALREADY_KNOWN'
  | 'CHECKPOINT_CONFLICT'
  | 'BAD_SOURCE'
  | 'UNKNOWN_SOURCE'
  | 'ALREADY_SLASHED'
  | 'BAD_REVEAL'
  | 'NOT_CANONICAL_ORDER'

export class PosError<Code extends string = string> extends Error {
  readonly action: ErrorAction
  readonly code: Code
  readonly details: Record<string, unknown>

  constructor(action: ErrorAction, code: Code, details: Record<string, unknown> = {}, message?: string) {
    super(message ?? `${code}${Object.keys(details).length > 0 ? ` ${JSON.stringify(details)}` : ''}`)
    this.action = action
    this.code = code
    this.details = details
  }
}

export class RecordError extends PosError<RecordErrorCode> {
  override name = 'RecordError'
}

export class BlockError extends PosError<BlockErrorCode> {
  override name = 'BlockError'
}
