import { equalBytes, toHex } from './bytes.js'
import { sha256 } from './crypto.js'
import { decodeCanonical, encodeCanonical, expectArray, expectBytes, expectUint } from './encoding.js'
import { BlockError } from './errors.js'
import type { NetworkParams } from './params.js'
import { nextMix } from './randao.js'
import type { Block } from './records.js'

export interface StakeEntry {
  readonly stake: number
  readonly seq: number
  /** Slot of the block that included the latest announcement; the stake lapses stakeTtlSlots later. */
  readonly renewedSlot: number
  /** The stake that still counts until `renewedSlot + exitDelaySlots` when this entry lowered it. */
  readonly before?: number
  /** The validator's RANDAO point: its commit, then each reveal (the next reveal hashes to it). */
  readonly point: Uint8Array
  /** Set by slashing evidence in a block: stake 0 for good, every later announcement refused. */
  readonly slashed?: true
}

export interface Account {
  readonly balance: number
  readonly won: number
}

/**
 * The state after a block: stake table and accounts, keyed by the hex public key. Immutable: a
 * block's state is a copy of its parent's with the block applied.
 */
export interface ChainState {
  readonly stakes: ReadonlyMap<string, StakeEntry>
  readonly accounts: ReadonlyMap<string, Account>
  /** RANDAO mix: the network id at genesis, then sha256(parent mix || reveal) per block. */
  readonly mix: Uint8Array
}

/** The state of genesis: no stake, no accounts, the mix is the network id. */
export const genesisState = (networkId: Uint8Array): ChainState => ({
  stakes: new Map(),
  accounts: new Map(),
  mix: networkId,
})

/**
 * Stake that counts at `slot`: registered, renewed within the TTL, not slashed; a lower stake
 * (leave or cut) counts from `exitDelaySlots` after the block that announced it.
 */
export function activeStake(p: NetworkParams, state: ChainState, key: string, slot: number): number {
  const e = state.stakes.get(key)
  if (e === undefined || e.slashed === true || slot - e.renewedSlot > p.stakeTtlSlots) return 0
  if (e.before !== undefined && slot < e.renewedSlot + p.exitDelaySlots) return e.before
  return e.stake
}

/** True when any validator has active stake at `slot` (the join rule applies only when none has). */
export function hasActiveStake(p: NetworkParams, state: ChainState, slot: number): boolean {
  for (const key of state.stakes.keys()) if (activeStake(p, state, key, slot) > 0) return true
  return false
}

export function activeValidators(p: NetworkParams, state: ChainState, slot: number): Map<string, number> {
  const out = new Map<string, number>()
  for (const key of state.stakes.keys()) {
    const s = activeStake(p, state, key, slot)
    if (s > 0) out.set(key, s)
  }
  return out
}

/** True when the state holds slashing evidence against the validator (hex key). */
export const isSlashed = (state: ChainState, key: string): boolean => state.stakes.get(key)?.slashed === true

/**
 * The state transition. Evidence first: each offender (not slashed before, once per block) loses
 * its stake and balance for good. Then stake announcements, which must carry a seq above the one
 * in the parent state (one per validator per block) and not be a slashed validator's; the
 * proposer is credited the block reward.
 */
export function applyBlock(p: NetworkParams, parent: ChainState, block: Block): ChainState {
  const stakes = new Map(parent.stakes)
  const accounts = new Map(parent.accounts)
  for (const e of block.evidence) {
    const key = toHex(e.a.proposer)
    if (stakes.get(key)?.slashed === true) {
      throw new BlockError('REJECT', 'ALREADY_SLASHED', { validator: key, evidence: e.idHex })
    }
    const prev = stakes.get(key)
    stakes.set(key, {
      stake: 0,
      seq: prev?.seq ?? 0,
      renewedSlot: block.slot,
      point: prev?.point ?? new Uint8Array(32),
      slashed: true,
    })
    const acc = accounts.get(key)
    if (acc !== undefined) accounts.set(key, { ...acc, balance: 0 })
  }
  const seen = new Set<string>()
  for (const a of block.stakes) {
    const key = toHex(a.validator)
    if (seen.has(key)) throw new BlockError('REJECT', 'DUPLICATE_IN_BLOCK', { record: 'stake', validator: key })
    seen.add(key)
    const prev = stakes.get(key)
    if (prev?.slashed === true) throw new BlockError('REJECT', 'SLASHED', { validator: key })
    if (prev !== undefined && a.seq <= prev.seq) {
      throw new BlockError('REJECT', 'STALE_SEQ', { validator: key, seq: a.seq, current: prev.seq })
    }
    // A cut or a leave keeps the stake that counted until the exit delay is over.
    const counted = activeStake(p, { stakes, accounts, mix: parent.mix }, key, block.slot)
    stakes.set(key, {
      stake: a.stake,
      seq: a.seq,
      renewedSlot: block.slot,
      point: a.commit,
      ...(counted > a.stake ? { before: counted } : {}),
    })
  }
  const proposer = toHex(block.proposer)
  // The reveal: the one preimage of the proposer's point (after its own announcement, if any).
  const entry = stakes.get(proposer)
  if (entry === undefined || !equalBytes(sha256(block.reveal), entry.point)) {
    throw new BlockError('REJECT', 'BAD_REVEAL', { proposer, reveal: toHex(block.reveal) })
  }
  stakes.set(proposer, { ...entry, point: block.reveal })
  const acc = accounts.get(proposer) ?? { balance: 0, won: 0 }
  accounts.set(proposer, { balance: acc.balance + p.reward, won: acc.won + 1 })
  return { stakes, accounts, mix: nextMix(parent.mix, block.reveal) }
}

export function encodeState(state: ChainState): Uint8Array {
  const stakes = [...state.stakes].map(([k, e]) => [
    Buffer.from(k, 'hex'),
    e.stake,
    e.seq,
    e.renewedSlot,
    e.slashed === true ? 1 : 0,
    e.before ?? 0,
    e.point,
  ])
  const accounts = [...state.accounts].map(([k, a]) => [Buffer.from(k, 'hex'), a.balance, a.won])
  return encodeCanonical([stakes, accounts, state.mix])
}

export function decodeState(bytes: Uint8Array): ChainState {
  const [s, a, mix] = expectArray(decodeCanonical(bytes, 64 * 1024 * 1024), 'state', 3)
  const stakes = new Map<string, StakeEntry>()
  for (const row of expectArray(s, 'state.stakes')) {
    const [k, stake, seq, renewedSlot, slashed, before, point] = expectArray(row, 'state.stake', 7)
    stakes.set(toHex(expectBytes(k, 'key', 32)), {
      stake: expectUint(stake, 'stake'),
      seq: expectUint(seq, 'seq'),
      renewedSlot: expectUint(renewedSlot, 'renewedSlot'),
      point: expectBytes(point, 'point', 32),
      ...(expectUint(slashed, 'slashed') === 1 ? { slashed: true as const } : {}),
      ...(expectUint(before, 'before') > 0 ? { before: expectUint(before, 'before') } : {}),
    })
  }
  const accounts = new Map<string, Account>()
  for (const row of expectArray(a, 'state.accounts')) {
    const [k, balance, won] = expectArray(row, 'state.account', 3)
    accounts.set(toHex(expectBytes(k, 'key', 32)), {
      balance: expectUint(balance, 'balance'),
      won: expectUint(won, 'won'),
    })
  }
  return { stakes, accounts, mix: expectBytes(mix, 'mix', 32) }
}
