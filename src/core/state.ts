import { equalBytes, toHex } from './bytes.js'
import { sha256 } from './crypto.js'
import { decodeCanonical, encodeCanonical, expectArray, expectBytes, expectUint } from './encoding.js'
import { BlockError } from './errors.js'
import { LayeredMap } from './layered-map.js'
import type { ChainConfig, NetworkParams } from './params.js'
import { nextMix } from './randao.js'
import type { Block, Transfer } from './records.js'

export interface StakeEntry {
  /** The stake announced. */
  readonly stake: number
  /**
   * The part of `stake` that counts (activated): a higher stake enters `activationDelaySlots`
   * after its block, within the churn limit; a lower one replaces it after the exit delay.
   */
  readonly counted: number
  /**
   * While part of the stake waits to count: the slot from which it may (its block + the delay).
   * It counts only once that block is also final as the chain knows it (`ChainState.finalSlot`).
   */
  readonly eligibleSlot?: number
  readonly seq: number
  /** Slot of the block that included the latest announcement; the stake lapses stakeTtlSlots later. */
  readonly renewedSlot: number
  /** The stake that still counts until `renewedSlot + exitDelaySlots` when this entry lowered it. */
  readonly before?: number
  /** The validator's RANDAO point: its commit, then each reveal (the next reveal hashes to it). */
  readonly point: Uint8Array
  /** Set by slashing evidence in a block: stake 0 for good, every later announcement refused. */
  readonly slashed?: true
  /**
   * Height of the latest block of this chain that recorded a vote of this validator: its own
   * block, a vote carried in a block (`participates`), or the block of its announcement.
   */
  readonly lastVote?: number
  /** The slot at which the inactivity leak took this validator's stake (kept when it announces again). */
  readonly ejectedAt?: number
}

/** Tokens on their way from bonded back to free: free again at slot `release`. */
export interface Unbonding {
  readonly amount: number
  readonly release: number
}

/**
 * An account: free tokens (spendable, bondable), bonded stake, unbonding amounts, the nonce of its
 * last transfer and the blocks it won. In the open devnet stake is self-declared, so `bonded` and
 * `unbonding` stay 0 and `free` holds block rewards.
 */
export interface Account {
  readonly free: number
  readonly bonded: number
  readonly unbonding: readonly Unbonding[]
  readonly nonce: number
  readonly won: number
}

export const EMPTY_ACCOUNT: Account = Object.freeze({ free: 0, bonded: 0, unbonding: [], nonce: 0, won: 0 })

/** The account as of `slot`: unbonding amounts released by then are free. */
export function settle(acc: Account, slot: number): Account {
  if (!acc.unbonding.some((u) => u.release <= slot)) return acc
  let free = acc.free
  for (const u of acc.unbonding) if (u.release <= slot) free += u.amount
  return { ...acc, free, unbonding: acc.unbonding.filter((u) => u.release > slot) }
}

/** A key's account as of `slot` (an empty one when it has none). */
export const accountAt = (state: ChainState, key: string, slot: number): Account =>
  settle(state.accounts.get(key) ?? EMPTY_ACCOUNT, slot)

/** Every token an account holds: free, bonded and unbonding. */
export const holdings = (a: Account): number => a.free + a.bonded + a.unbonding.reduce((x, u) => x + u.amount, 0)

/** All tokens in a state: the genesis total plus rewards minus what was burned. */
export function supplyOf(state: ChainState): number {
  let total = 0
  for (const a of state.accounts.values()) total += holdings(a)
  return total
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
  /** Tokens burned by slashing so far. */
  readonly burned: number
  /** Validators (hex keys) with stake waiting to count, in the order they may enter. */
  readonly queue: readonly string[]
  /**
   * The highest seq of a pruned stake entry: a key without an entry must announce a seq above it,
   * so an old announcement of a pruned validator cannot be replayed.
   */
  readonly seqFloor: number
  /** The FFG source of the block that made this state: its block's hash (the network id at genesis) and epoch (0 at genesis). */
  readonly sourceHash: Uint8Array
  readonly sourceEpoch: number
  /**
   * The slot of that source's block (0 when it is not within SOURCE_DEPTH blocks of this one and
   * not the parent state's source: see `sourceSlotOf`).
   */
  readonly sourceSlot: number
  /**
   * Final as this chain itself shows it: the slot of the latest checkpoint block a block of this
   * chain finalized, i.e. whose source was one epoch above its parent's and which carried the
   * votes of that link (more than 2/3 of the counted stake: `linkProven`), so that the parent's
   * source was finalized by it (FFG's k = 1 rule). Every block of this chain at or below this
   * slot is final. New stake counts only once its block is (docs/PROTOCOL.md section 3).
   */
  readonly finalSlot: number
  /** Blocks in a row, ending with this one, since one that proved a finalizing link (`linkProven`: finality moving). */
  readonly stall: number
}

/** How often (in slots) a block prunes the stake table: the first block at or after each multiple. */
export const PRUNE_EVERY_SLOTS = 64

/**
 * True when a stake entry no longer matters and is pruned: not slashed (that one is kept, so a
 * slashed key stays refused), and lapsed (not renewed within the TTL) or a leave whose exit delay
 * is over (an entry the inactivity leak emptied stays the TTL: links from sources before its
 * ejection must still see it, section 5).
 */
export function prunable(p: NetworkParams, e: StakeEntry, slot: number): boolean {
  if (e.slashed === true) return false
  const age = slot - e.renewedSlot
  return age > p.stakeTtlSlots || (e.stake === 0 && e.ejectedAt === undefined && age > p.exitDelaySlots)
}

/** The state of genesis: no stake, the genesis allocations as free balances, the mix is the network id. */
export const genesisState = (net: ChainConfig): ChainState => ({
  stakes: new Map(),
  accounts: new Map([...net.allocations].map(([key, free]) => [key, { ...EMPTY_ACCOUNT, free }])),
  mix: net.id,
  burned: 0,
  queue: [],
  seqFloor: 0,
  sourceHash: net.id,
  sourceEpoch: 0,
  sourceSlot: 0,
  finalSlot: 0,
  stall: 0,
})

/**
 * Why a transfer cannot be paid from its sender's account (as of the block's slot), or undefined
 * when it can: the one check of gossip, block building and import.
 */
export function transferProblem(
  acc: Account,
  t: Transfer,
): 'STALE_NONCE' | 'NONCE_GAP' | 'INSUFFICIENT_BALANCE' | undefined {
  if (t.nonce <= acc.nonce) return 'STALE_NONCE'
  if (t.nonce > acc.nonce + 1) return 'NONCE_GAP'
  return t.amount > acc.free ? 'INSUFFICIENT_BALANCE' : undefined
}

/**
 * What a stake announcement may ask for in a genesis network: the account's free and bonded
 * tokens (the difference to its current stake is bonded or starts unbonding).
 */
export const stakeLimit = (acc: Account): number => acc.free + acc.bonded

/**
 * Stake that counts at `slot`: registered, renewed within the TTL, not slashed; a lower stake
 * (leave or cut) counts from `exitDelaySlots` after the block that announced it.
 */
export function activeStake(p: NetworkParams, state: Pick<ChainState, 'stakes'>, key: string, slot: number): number {
  const e = state.stakes.get(key)
  if (e === undefined || e.slashed === true || slot - e.renewedSlot > p.stakeTtlSlots) return 0
  if (e.before !== undefined && slot < e.renewedSlot + p.exitDelaySlots) return e.before
  return e.counted
}

/** True when the inactivity leak took this validator's stake and it has not announced since. */
export const isEjected = (e: StakeEntry | undefined): boolean =>
  e?.ejectedAt !== undefined && e.ejectedAt === e.renewedSlot

/** A validator's stake announced but not counting yet (its block not final, the activation delay, the churn limit). */
export const waitingStake = (e: StakeEntry | undefined): number =>
  e === undefined || e.slashed === true ? 0 : Math.max(0, e.stake - e.counted)

/** All stake waiting to count, and how many validators it belongs to. */
export function queuedStake(state: ChainState): { validators: number; stake: number } {
  let stake = 0
  let validators = 0
  for (const key of state.queue) {
    const w = waitingStake(state.stakes.get(key))
    if (w === 0) continue
    stake += w
    validators++
  }
  return { validators, stake }
}

/**
 * True when queued stake may start to count in a block of `slot` whose chain shows blocks up to
 * `finalSlot` final: its activation delay is over and the block that announced it is final.
 */
export const mayCount = (p: NetworkParams, e: StakeEntry, slot: number, finalSlot: number): boolean =>
  (e.eligibleSlot ?? 0) <= slot && (e.eligibleSlot ?? 0) - p.activationDelaySlots <= finalSlot

/**
 * True when a block of `slot` on this state would start counting queued stake (its delay is over
 * and its block is final, `finalSlot` as that block will show it): the network makes a block for
 * it even with nothing else to do.
 */
export function activationDue(p: NetworkParams, state: ChainState, slot: number, finalSlot: number): boolean {
  for (const key of state.queue) {
    const e = state.stakes.get(key)
    if (e === undefined || e.slashed === true || e.counted >= e.stake) continue
    return mayCount(p, e, slot, finalSlot)
  }
  return false
}

/**
 * What a block on `parent` whose source (block slot `sourceSlot`) is justified by a link from the
 * parent's source one epoch below, proven by the votes the block carries (`proven`), shows final:
 * the parent's source, when the new source is that block or a descendant of it.
 */
export const finalSlotAfter = (parent: ChainState, proven: boolean, sourceSlot: number): number =>
  proven && sourceSlot >= parent.sourceSlot ? Math.max(parent.finalSlot, parent.sourceSlot) : parent.finalSlot

/** The churn limit of a block: how much new stake may start to count in it. */
export function churnLimit(p: NetworkParams, parent: ChainState, slot: number): number {
  return churnFor(p, countedStake(p, parent, slot))
}

/** The churn limit next to `counted` stake: max(minChurn, counted / churnQuotient). */
export const churnFor = (p: NetworkParams, counted: number): number =>
  Math.max(p.minChurn, Math.floor(counted / p.churnQuotient))

/** All stake that counts at `slot`. */
export function countedStake(p: NetworkParams, state: ChainState, slot: number): number {
  let total = 0
  for (const key of state.stakes.keys()) total += activeStake(p, state, key, slot)
  return total
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

/** The fee a reading costs on this network: `readingFee` in a genesis network, 0 in the devnet (no tokens). */
export const readingFeeOf = (net: ChainConfig): number => (net.ledger ? net.params.readingFee : 0)

/** True when `key` may announce on this state: it has an entry, or the stake table has room for one. */
export const hasRoomFor = (p: NetworkParams, state: ChainState, key: string): boolean =>
  state.stakes.has(key) || state.stakes.size < p.maxValidators

/** True when the state holds slashing evidence against the validator (hex key). */
export const isSlashed = (state: ChainState, key: string): boolean => state.stakes.get(key)?.slashed === true

/**
 * The state transition (docs/PROTOCOL.md section 6). Evidence first: each offender (not slashed
 * before, once per block) loses its stake for good, and its bonded and unbonding tokens are burned
 * (in the devnet, where stake is self-declared, its free balance: the rewards it earned). Then
 * transfers in order (the sender's next nonce, within its free balance), then stake announcements,
 * which must carry a seq above the one in the parent state (one per validator per block), not be a
 * slashed validator's and, in a genesis network, be backed by free + bonded tokens; the proposer
 * is credited the block reward.
 */
export function applyBlock(
  net: ChainConfig,
  parent: ChainState,
  block: Block,
  /** The parent block's slot (0 for genesis): pruning happens in the first block past each multiple. */
  parentSlot: number,
  /** Validators (hex keys) whose votes carried in the block count as taking part (`participates`). */
  voters: ReadonlySet<string>,
  /** The slot of the block's FFG source block (see ChainState.sourceSlot). */
  sourceSlot: number,
  /** True when the block carries the votes of a link from the parent's source to its own one epoch above (`linkProven`). */
  proven: boolean,
): ChainState {
  const p = net.params
  // Layers over the parent's tables: a block costs the entries it changes, not a copy of them.
  const stakes = LayeredMap.over(parent.stakes)
  const accounts = LayeredMap.over(parent.accounts)
  let burned = parent.burned
  const queue = new QueueDraft(parent.queue)
  // A fresh chain (or one whose every validator lapsed): its first validators count at once.
  const founding = !hasActiveStake(p, parent, block.slot)
  const proposer = toHex(block.proposer)
  const account = (key: string) => settle(accounts.get(key) ?? EMPTY_ACCOUNT, block.slot)
  for (const e of block.evidence) {
    const key = toHex(e.a.proposer)
    if (stakes.get(key)?.slashed === true) {
      throw new BlockError('REJECT', 'ALREADY_SLASHED', { validator: key, evidence: e.idHex })
    }
    const prev = stakes.get(key)
    stakes.set(key, {
      stake: 0,
      counted: 0,
      seq: prev?.seq ?? 0,
      renewedSlot: block.slot,
      point: prev?.point ?? new Uint8Array(32),
      slashed: true,
    })
    const acc = account(key)
    const burn = net.ledger ? acc.bonded + holdings({ ...acc, free: 0, bonded: 0 }) : acc.free
    burned += burn
    accounts.set(key, net.ledger ? { ...acc, bonded: 0, unbonding: [] } : { ...acc, free: 0 })
  }
  for (const t of block.transfers) {
    const from = toHex(t.from)
    const sender = account(from)
    const problem = transferProblem(sender, t)
    if (problem !== undefined) {
      throw new BlockError('REJECT', problem, { transfer: t.idHex, from, nonce: t.nonce })
    }
    accounts.set(from, { ...sender, free: sender.free - t.amount, nonce: t.nonce })
    const to = toHex(t.to)
    const receiver = account(to)
    accounts.set(to, { ...receiver, free: receiver.free + t.amount })
  }
  const seen = new Set<string>()
  for (const a of block.stakes) {
    const key = toHex(a.validator)
    if (seen.has(key)) throw new BlockError('REJECT', 'DUPLICATE_IN_BLOCK', { record: 'stake', validator: key })
    seen.add(key)
    const prev = stakes.get(key)
    if (prev?.slashed === true) throw new BlockError('REJECT', 'SLASHED', { validator: key })
    if (prev === undefined && stakes.size >= p.maxValidators)
      throw new BlockError('REJECT', 'TABLE_FULL', { validator: key, entries: stakes.size })
    const floor = prev?.seq ?? parent.seqFloor
    if (a.seq <= floor) throw new BlockError('REJECT', 'STALE_SEQ', { validator: key, seq: a.seq, current: floor })
    if (a.seq > block.slot)
      throw new BlockError('REJECT', 'SEQ_AHEAD', { validator: key, seq: a.seq, slot: block.slot })
    if (net.ledger) {
      // Bond the difference, or start unbonding what the new stake no longer needs.
      const acc = account(key)
      if (a.stake > stakeLimit(acc)) {
        throw new BlockError('REJECT', 'INSUFFICIENT_BALANCE', {
          validator: key,
          stake: a.stake,
          free: acc.free,
          bonded: acc.bonded,
        })
      }
      const release = block.slot + p.unbondingSlots
      accounts.set(
        key,
        a.stake >= acc.bonded
          ? { ...acc, free: acc.free - (a.stake - acc.bonded), bonded: a.stake }
          : { ...acc, bonded: a.stake, unbonding: [...acc.unbonding, { amount: acc.bonded - a.stake, release }] },
      )
    }
    // A cut or a leave keeps the stake that counted until the exit delay is over.
    const counted = activeStake(p, { stakes }, key, block.slot)
    // A raise (or a newcomer, or a validator back after its stake lapsed) waits to count.
    const lapsed = prev === undefined || block.slot - prev.renewedSlot > p.stakeTtlSlots
    // At founding only the founder's own stake counts at once (it must, to propose); everyone
    // else's waits like any newcomer's, so a flood that lands in a chain's first block gains nothing.
    const kept = founding && key === proposer ? a.stake : Math.min(lapsed ? 0 : prev.counted, a.stake)
    const at = queue.items.indexOf(key)
    const raised = a.stake > (lapsed ? 0 : prev.stake)
    let eligibleSlot = prev?.eligibleSlot
    if (kept < a.stake && (raised || at < 0)) {
      if (at >= 0) queue.edit().splice(at, 1)
      queue.edit().push(key)
      eligibleSlot = block.slot + p.activationDelaySlots
    } else if (kept >= a.stake && at >= 0) queue.edit().splice(at, 1)
    stakes.set(key, {
      stake: a.stake,
      counted: kept,
      seq: a.seq,
      renewedSlot: block.slot,
      point: a.commit,
      ...(counted > a.stake ? { before: counted } : {}),
      ...(kept < a.stake && eligibleSlot !== undefined ? { eligibleSlot } : {}),
      lastVote: block.height,
      ...(prev?.ejectedAt !== undefined ? { ejectedAt: prev.ejectedAt } : {}),
    })
  }
  // The reading fee (genesis networks): burned from each author, who must be able to pay it.
  const fee = readingFeeOf(net)
  if (fee > 0) {
    for (const r of block.readings) {
      const key = toHex(r.author)
      const acc = account(key)
      if (acc.free < fee)
        throw new BlockError('REJECT', 'INSUFFICIENT_BALANCE', { record: r.idHex, author: key, free: acc.free, fee })
      accounts.set(key, { ...acc, free: acc.free - fee })
      burned += fee
    }
  }
  const finalSlot = finalSlotAfter(parent, proven, sourceSlot)
  activateQueued(p, parent, stakes, queue, block.slot, finalSlot)
  // The reveal: the one preimage of the proposer's point (after its own announcement, if any).
  const entry = stakes.get(proposer)
  if (entry === undefined || !equalBytes(sha256(block.reveal), entry.point)) {
    throw new BlockError('REJECT', 'BAD_REVEAL', { proposer, reveal: toHex(block.reveal) })
  }
  stakes.set(proposer, { ...entry, point: block.reveal })
  const acc = account(proposer)
  accounts.set(proposer, { ...acc, free: acc.free + p.reward, won: acc.won + 1 })
  // Participation, then the inactivity leak.
  for (const key of [proposer, ...voters]) {
    const e = stakes.get(key)
    if (e !== undefined && e.slashed !== true && (e.lastVote ?? 0) < block.height)
      stakes.set(key, { ...e, lastVote: block.height })
  }
  // Finality moves by a justified link between consecutive epochs, so a source one epoch above
  // the parent's, with the link's votes carried in the block, is the sign of it; a source that
  // jumps further (justified, nothing finalized), or one its block cannot prove (a proposer could
  // claim any checkpoint of an ancestor), does not end a stall.
  const stall = proven ? 0 : parent.stall + 1
  // The inactivity leak (docs/PROTOCOL.md section 3): after inactivityBlocks stalled blocks.
  if (stall >= p.inactivityBlocks) {
    const ejected = leakable(p, stakes, block)
    queue.drop(new Set(ejected))
    for (const key of ejected) {
      const e = stakes.get(key) as StakeEntry
      stakes.set(key, {
        stake: 0,
        counted: 0,
        seq: e.seq,
        renewedSlot: block.slot,
        point: e.point,
        ...(e.lastVote !== undefined ? { lastVote: e.lastVote } : {}),
        ejectedAt: block.slot,
      })
      if (net.ledger) {
        // Its bonded tokens start unbonding, as after a leave (they are not burned).
        const held = account(key)
        if (held.bonded > 0)
          accounts.set(key, {
            ...held,
            bonded: 0,
            unbonding: [...held.unbonding, { amount: held.bonded, release: block.slot + p.unbondingSlots }],
          })
      }
    }
  }
  const seqFloor = pruneStakes(p, parent, block, parentSlot, stakes, queue)
  return {
    stakes,
    accounts,
    mix: nextMix(parent.mix, block.reveal),
    burned,
    queue: queue.items,
    seqFloor,
    sourceHash: block.source.hash,
    sourceEpoch: block.source.epoch,
    sourceSlot,
    finalSlot,
    stall,
  }
}

/**
 * Validators (not the proposer, not slashed) the leak ejects: counted ones with no vote recorded
 * in the last inactivityBlocks blocks, and every one whose stake waits to count with none counted
 * (announced before this block).
 */
function leakable(p: NetworkParams, stakes: LayeredMap<StakeEntry>, block: Block): string[] {
  const proposer = toHex(block.proposer)
  const out: string[] = []
  for (const [key, e] of stakes) {
    if (key === proposer || e.slashed === true) continue
    if (activeStake(p, { stakes }, key, block.slot) > 0) {
      if ((e.lastVote ?? 0) < block.height - p.inactivityBlocks) out.push(key)
    } else if (waitingStake(e) > 0 && e.renewedSlot < block.slot) {
      // Stake waiting to count with nothing counted yet (announced before this block): it could
      // not vote. Left in the queue, a flood's part that had not counted before the stall would
      // count as soon as finality resumed (its blocks are final by then) and stall it again; an
      // honest newcomer announces again.
      out.push(key)
    }
  }
  return out
}

/**
 * The pruning step: the first block at or after each multiple of PRUNE_EVERY_SLOTS (after its
 * parent's slot) removes every prunable entry (not the proposer's, whose reveal follows) and raises
 * the seq floor to the highest seq removed. Returns the new floor.
 */
function pruneStakes(
  p: NetworkParams,
  parent: ChainState,
  block: Block,
  parentSlot: number,
  stakes: LayeredMap<StakeEntry>,
  queue: QueueDraft,
): number {
  let floor = parent.seqFloor
  if (Math.floor(block.slot / PRUNE_EVERY_SLOTS) === Math.floor(parentSlot / PRUNE_EVERY_SLOTS)) return floor
  const proposer = toHex(block.proposer)
  const gone = new Set<string>()
  for (const [key, e] of stakes) {
    if (key === proposer || !prunable(p, e, block.slot)) continue
    gone.add(key)
    floor = Math.max(floor, e.seq)
  }
  for (const key of gone) stakes.delete(key)
  queue.drop(gone)
  return floor
}

/**
 * The activation step of a block: from the head of the queue, stake whose delay is over and whose
 * block is final starts to count, up to the churn limit (a part when the limit runs out; the rest
 * in later blocks).
 */
function activateQueued(
  p: NetworkParams,
  parent: ChainState,
  stakes: LayeredMap<StakeEntry>,
  queue: QueueDraft,
  slot: number,
  finalSlot: number,
): void {
  // The limit sums the counted stake (every entry): only once something may count. While the
  // head of the queue waits (a stall keeps it waiting for hundreds of blocks) no block pays it.
  let budget: number | undefined
  while (queue.items.length > 0) {
    const key = queue.items[0]
    const e = stakes.get(key)
    if (e === undefined || e.slashed === true || e.counted >= e.stake) {
      queue.edit().shift()
      continue
    }
    if (!mayCount(p, e, slot, finalSlot)) return
    budget ??= churnLimit(p, parent, slot)
    if (budget === 0) return
    const add = Math.min(e.stake - e.counted, budget)
    budget -= add
    const { eligibleSlot: _, ...rest } = e
    if (e.counted + add < e.stake) {
      stakes.set(key, { ...e, counted: e.counted + add })
      return
    }
    stakes.set(key, { ...rest, counted: e.stake })
    queue.edit().shift()
  }
}

/**
 * A block's activation queue: its parent's, copied at the first change only. Most blocks change
 * nothing, and while a flood waits through a stall each of hundreds of non-final blocks held a
 * copy of thousands of keys.
 */
class QueueDraft {
  private own = false
  constructor(private list: readonly string[]) {}

  get items(): readonly string[] {
    return this.list
  }

  /** The queue to change: a copy of the parent's the first time. */
  edit(): string[] {
    if (!this.own) {
      this.list = [...this.list]
      this.own = true
    }
    return this.list as string[]
  }

  /** Remove these keys, in one pass. */
  drop(keys: ReadonlySet<string>): void {
    if (keys.size === 0 || !this.list.some((k) => keys.has(k))) return
    this.list = this.list.filter((k) => !keys.has(k))
    this.own = true
  }
}

export function encodeState(state: ChainState): Uint8Array {
  const stakes = [...state.stakes].map(([k, e]) => [
    Buffer.from(k, 'hex'),
    e.stake,
    e.counted,
    e.eligibleSlot ?? 0,
    e.seq,
    e.renewedSlot,
    e.slashed === true ? 1 : 0,
    e.before ?? 0,
    e.point,
    e.lastVote ?? 0,
    e.ejectedAt ?? 0,
  ])
  const accounts = [...state.accounts].map(([k, a]) => [
    Buffer.from(k, 'hex'),
    a.free,
    a.bonded,
    a.unbonding.map((u) => [u.amount, u.release]),
    a.nonce,
    a.won,
  ])
  return encodeCanonical([
    stakes,
    accounts,
    state.mix,
    state.burned,
    state.queue.map((k) => Buffer.from(k, 'hex')),
    state.seqFloor,
    state.sourceEpoch,
    state.stall,
    state.sourceSlot,
    state.finalSlot,
    state.sourceHash,
  ])
}

export function decodeState(bytes: Uint8Array): ChainState {
  const [s, a, mix, burned, q, floor, sourceEpoch, stall, sourceSlot, finalSlot, sourceHash] = expectArray(
    decodeCanonical(bytes, 64 * 1024 * 1024),
    'state',
    11,
  )
  const stakes = new Map<string, StakeEntry>()
  for (const row of expectArray(s, 'state.stakes')) {
    const [k, stake, counted, eligible, seq, renewedSlot, slashed, before, point, lastVote, ejectedAt] = expectArray(
      row,
      'state.stake',
      11,
    )
    stakes.set(toHex(expectBytes(k, 'key', 32)), {
      stake: expectUint(stake, 'stake'),
      counted: expectUint(counted, 'counted'),
      ...(expectUint(eligible, 'eligibleSlot') > 0 ? { eligibleSlot: expectUint(eligible, 'eligibleSlot') } : {}),
      seq: expectUint(seq, 'seq'),
      renewedSlot: expectUint(renewedSlot, 'renewedSlot'),
      point: expectBytes(point, 'point', 32),
      ...(expectUint(slashed, 'slashed') === 1 ? { slashed: true as const } : {}),
      ...(expectUint(before, 'before') > 0 ? { before: expectUint(before, 'before') } : {}),
      ...(expectUint(lastVote, 'lastVote') > 0 ? { lastVote: expectUint(lastVote, 'lastVote') } : {}),
      ...(expectUint(ejectedAt, 'ejectedAt') > 0 ? { ejectedAt: expectUint(ejectedAt, 'ejectedAt') } : {}),
    })
  }
  const accounts = new Map<string, Account>()
  for (const row of expectArray(a, 'state.accounts')) {
    const [k, free, bonded, unbonding, nonce, won] = expectArray(row, 'state.account', 6)
    accounts.set(toHex(expectBytes(k, 'key', 32)), {
      free: expectUint(free, 'free'),
      bonded: expectUint(bonded, 'bonded'),
      unbonding: expectArray(unbonding, 'unbonding').map((u) => {
        const [amount, release] = expectArray(u, 'unbonding', 2)
        return { amount: expectUint(amount, 'amount'), release: expectUint(release, 'release') }
      }),
      nonce: expectUint(nonce, 'nonce'),
      won: expectUint(won, 'won'),
    })
  }
  return {
    stakes,
    accounts,
    mix: expectBytes(mix, 'mix', 32),
    burned: expectUint(burned, 'burned'),
    queue: expectArray(q, 'state.queue').map((k) => toHex(expectBytes(k, 'queue key', 32))),
    seqFloor: expectUint(floor, 'seqFloor'),
    sourceHash: expectBytes(sourceHash, 'sourceHash', 32),
    sourceEpoch: expectUint(sourceEpoch, 'sourceEpoch'),
    sourceSlot: expectUint(sourceSlot, 'sourceSlot'),
    finalSlot: expectUint(finalSlot, 'finalSlot'),
    stall: expectUint(stall, 'stall'),
  }
}
