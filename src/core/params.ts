import { toHex } from './bytes.js'
import { sha256 } from './crypto.js'
import { encodeCanonical } from './encoding.js'

/**
 * Network parameters. Every peer of one network uses the same values: they are hashed into the
 * genesis block, whose hash is the network id.
 */
export interface NetworkParams {
  /** Human name, e.g. "devnet". */
  readonly name: string
  /** Unix ms of slot 0. Fixed, never the wall clock at start-up. */
  readonly genesisTime: number
  readonly slotMs: number
  /** A stake announcement counts for this many slots after the block that included it. */
  readonly stakeTtlSlots: number
  /**
   * A lower stake (a leave or a cut) takes effect this many slots after the block that holds it;
   * until then the validator keeps its previous stake and votes with it (docs/PROTOCOL.md 5).
   */
  readonly exitDelaySlots: number
  /**
   * A higher stake (a newcomer's, or a raise) waits this many slots after the block that holds it
   * before it may count, then enters within the churn limit (docs/PROTOCOL.md section 3).
   */
  readonly activationDelaySlots: number
  /**
   * The inactivity leak: after this many blocks in a row without a newer justified source, a
   * block takes the stake of counted validators with no vote recorded in this many blocks
   * (docs/PROTOCOL.md section 3). A partition longer than this lets each side finalize alone.
   */
  readonly inactivityBlocks: number
  /**
   * The most entries the stake table holds (zero stakes not yet pruned included): a new key may
   * announce only while there is room. Bounds every peer's memory whatever a flood of fresh keys
   * does (docs/PROTOCOL.md section 3).
   */
  readonly maxValidators: number
  /** Churn limit: per block at most max(minChurn, counted stake / churnQuotient) new stake counts. */
  readonly churnQuotient: number
  readonly minChurn: number
  /**
   * Genesis networks: a bonded amount that a lower stake (or a leave) releases becomes free again
   * this many slots after the block that holds the announcement.
   */
  readonly unbondingSlots: number
  /** Tokens credited to the proposer of each canonical block. */
  readonly reward: number
  /**
   * Genesis networks: tokens burned from a reading's author for each reading a block holds (a
   * reading its author cannot pay is invalid there), so spam from many keys costs tokens. 0: free
   * (the default; the open devnet has no tokens and ignores it).
   */
  readonly readingFee: number
  readonly maxReadingsPerBlock: number
  readonly maxStakesPerBlock: number
  /** Token transfers per block. */
  readonly maxTransfersPerBlock: number
  /** Slashing evidence records per block. */
  readonly maxEvidencePerBlock: number
  /** Vote headers (the votes that justified the block's source) per block. */
  readonly maxVotesPerBlock: number
  readonly maxBlockBytes: number
  readonly minBpm: number
  readonly maxBpm: number
  /** How far a record's slot or time may run ahead of the local clock. */
  readonly maxClockDriftMs: number
  /**
   * How old a reading may be when its block is made (block rule): spam dated long ago cannot push
   * current readings out, while a peer offline for days still gets its outbox in.
   */
  readonly maxReadingAgeMs: number
  /**
   * The most one validator may stake. With it, a sum of stakes stays an exact integer in a double
   * (below 2^53) for up to 2^53 / maxStake validators (2,097,152 at the default 2^32).
   */
  readonly maxStake: number
}

export const DEFAULT_PARAMS: NetworkParams = Object.freeze({
  name: 'devnet',
  genesisTime: Date.UTC(2026, 0, 1),
  slotMs: 1000,
  stakeTtlSlots: 600,
  exitDelaySlots: 4,
  activationDelaySlots: 8,
  inactivityBlocks: 256,
  maxValidators: 8192,
  churnQuotient: 8,
  minChurn: 32,
  unbondingSlots: 16,
  reward: 1,
  readingFee: 0,
  maxReadingsPerBlock: 1024,
  maxStakesPerBlock: 256,
  maxTransfersPerBlock: 256,
  maxEvidencePerBlock: 8,
  maxVotesPerBlock: 128,
  maxBlockBytes: 256 * 1024,
  minBpm: 20,
  maxBpm: 300,
  maxClockDriftMs: 500,
  maxReadingAgeMs: 7 * 24 * 60 * 60 * 1000,
  maxStake: 2 ** 32,
})

export function checkParams(p: NetworkParams): void {
  const intFields: (keyof NetworkParams)[] = [
    'genesisTime',
    'slotMs',
    'stakeTtlSlots',
    'exitDelaySlots',
    'activationDelaySlots',
    'inactivityBlocks',
    'maxValidators',
    'churnQuotient',
    'minChurn',
    'unbondingSlots',
    'reward',
    'readingFee',
    'maxReadingsPerBlock',
    'maxStakesPerBlock',
    'maxTransfersPerBlock',
    'maxEvidencePerBlock',
    'maxVotesPerBlock',
    'maxBlockBytes',
    'minBpm',
    'maxBpm',
    'maxClockDriftMs',
    'maxReadingAgeMs',
  ]
  for (const f of intFields) {
    const v = p[f]
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) {
      throw new RangeError(`network parameter ${f} must be a non-negative integer, got ${String(v)}`)
    }
  }
  if (p.slotMs < 50) throw new RangeError('network parameter slotMs must be at least 50')
  if (p.stakeTtlSlots < 4) throw new RangeError('network parameter stakeTtlSlots must be at least 4')
  if (p.inactivityBlocks < 16) throw new RangeError('network parameter inactivityBlocks must be at least 16')
  if (p.maxValidators < 1) throw new RangeError('network parameter maxValidators must be at least 1')
  if (p.churnQuotient < 1 || p.minChurn < 1)
    throw new RangeError('network parameters churnQuotient and minChurn must be at least 1')
  if (p.minBpm > p.maxBpm) throw new RangeError('network parameter minBpm must not exceed maxBpm')
  if (!Number.isSafeInteger(p.maxStake) || p.maxStake < 1 || p.maxStake > 2 ** 40)
    throw new RangeError('network parameter maxStake must be a whole number from 1 to 2^40')
  if (typeof p.name !== 'string' || !/^[a-z0-9][a-z0-9-]{0,31}$/.test(p.name)) {
    throw new RangeError('network name must be 1-32 characters of a-z, 0-9 and "-"')
  }
}

/** The most tokens a genesis file may allocate in all: sums of balances stay exact integers. */
export const MAX_SUPPLY = 2 ** 50

/**
 * The genesis allocations of a genesis network (hex public key -> free balance), sorted by key.
 * Empty for the open devnet.
 */
export type Allocations = ReadonlyMap<string, number>

export function checkAllocations(allocations: Allocations): void {
  let total = 0
  for (const [key, balance] of allocations) {
    if (!/^[0-9a-f]{64}$/.test(key)) throw new RangeError(`allocation key ${key} is not a 32-byte public key`)
    if (!Number.isSafeInteger(balance) || balance < 1)
      throw new RangeError(`allocation ${key}: balance must be a whole number of at least 1, got ${String(balance)}`)
    total += balance
  }
  if (total > MAX_SUPPLY) throw new RangeError(`allocations total ${total}, above the limit of 2^50`)
}

/**
 * The genesis block is fully determined by the parameters and the allocations; its hash is the
 * network id.
 */
export function genesisHash(p: NetworkParams, allocations: Allocations = new Map()): Uint8Array {
  checkParams(p)
  checkAllocations(allocations)
  return sha256(
    encodeCanonical([
      'pos-peer/genesis/v7',
      p.name,
      p.genesisTime,
      p.slotMs,
      p.stakeTtlSlots,
      p.exitDelaySlots,
      p.activationDelaySlots,
      p.inactivityBlocks,
      p.maxValidators,
      p.churnQuotient,
      p.minChurn,
      p.unbondingSlots,
      p.reward,
      p.readingFee,
      p.maxReadingsPerBlock,
      p.maxStakesPerBlock,
      p.maxTransfersPerBlock,
      p.maxEvidencePerBlock,
      p.maxVotesPerBlock,
      p.maxBlockBytes,
      p.minBpm,
      p.maxBpm,
      p.maxClockDriftMs,
      p.maxReadingAgeMs,
      p.maxStake,
      [...allocations].sort(([a], [b]) => (a < b ? -1 : 1)).map(([k, v]) => [Buffer.from(k, 'hex'), v]),
    ]),
  )
}

/**
 * A network as the code sees it: its parameters, its allocations and their hash (the genesis hash,
 * the network id).
 */
export interface ChainConfig {
  readonly params: NetworkParams
  /** Genesis balances (hex public key -> tokens); empty for the open devnet. */
  readonly allocations: Allocations
  /**
   * True for a genesis network: stake must be backed by tokens (bonded from the free balance).
   * False for the open devnet: stake is self-declared.
   */
  readonly ledger: boolean
  /** Genesis hash. */
  readonly id: Uint8Array
  readonly idHex: string
}

export function makeChainConfig(
  overrides: Partial<NetworkParams> = {},
  allocations: Allocations = new Map(),
): ChainConfig {
  const params = Object.freeze({ ...DEFAULT_PARAMS, ...overrides })
  const sorted: Allocations = new Map([...allocations].sort(([a], [b]) => (a < b ? -1 : 1)))
  const id = genesisHash(params, sorted)
  return { params, allocations: sorted, ledger: sorted.size > 0, id, idHex: toHex(id) }
}

/** Slot containing unix time `ms` (negative before genesis). */
export function slotAt(p: NetworkParams, ms: number): number {
  return Math.floor((ms - p.genesisTime) / p.slotMs)
}

export function slotStart(p: NetworkParams, slot: number): number {
  return p.genesisTime + slot * p.slotMs
}
