import { toHex } from './bytes.js'
import type { BlockNode, Chain } from './chain.js'
import type { Evidence, Reading, StakeAnnouncement, Transfer } from './records.js'
import { type Account, accountAt, isSlashed, readingFeeOf, stakeLimit, transferProblem } from './state.js'

/**
 * Pending readings a pool holds by default: four full blocks (maxReadingsPerBlock 1,024). Readings
 * leave only when final, about three slots after they enter a block, so four blocks' worth keeps
 * every block full under load. More only lengthens the burst a relay accepts, verifies and
 * forwards when a flood of valid readings from many keys begins: with 10,000 the peers downstream
 * spent their first seconds of a 1,000-key spam verifying it, blocks waited behind it in the same
 * streams, and typed readings took up to 7 slots to be final (3.5 with 4,096; docs/PERFORMANCE.md).
 */
export const MAX_PENDING_READINGS = 4096

export interface MempoolOptions {
  /** Bound on pending readings (all authors); default MAX_PENDING_READINGS. */
  readonly maxReadings?: number
  /** Bound on one author's pending readings (this peer's own are exempt: its outbox bounds them). */
  readonly maxPerAuthor?: number
  /** Bound on pending stake announcements (one per validator). */
  readonly maxStakes?: number
  /** Bound on pending transfers (all senders). */
  readonly maxTransfers?: number
}

/**
 * Stake announcements pending by default: eight full blocks' worth (256 each). A flood of fresh
 * keys fills the stake table in 32 blocks and then waits (TABLE_FULL), so a larger pool only held
 * and forwarded more of it: with 10,000 the relays of a 60,000-key flood peaked at 215-232 MB,
 * with 2,048 at 156-167 (docs/PERFORMANCE.md).
 */
export const MAX_PENDING_STAKES = 2048

/** Transfers one sender may have pending (consecutive nonces ahead of the chain). */
export const MAX_TRANSFERS_PER_SENDER = 16

export interface Pending {
  readonly readings: Reading[]
  readonly stakes: StakeAnnouncement[]
  readonly transfers: Transfer[]
  readonly evidence: Evidence[]
}

/** Evidence kept per offender until a final block slashes it. */
const MAX_EVIDENCE = 256

/** Why a reading was not taken in: already pending, its author at quota, or the pool full of own readings. */
export type AddResult = 'added' | 'known' | 'author-quota' | 'full'

/**
 * Readings pending per author: a pool takes no more of one author's and ignores the rest as spam
 * (`AUTHOR_QUOTA`, counted against the peer that sent them).
 */
export const MAX_PENDING_PER_AUTHOR = 256

/**
 * Records waiting to be in a final block. Nothing leaves the pool when a candidate loses: a record
 * leaves only when the finalized chain holds it (or, for stakes, a newer seq).
 *
 * Bounded and fair: each author may have `maxPerAuthor` readings pending; when the whole pool is
 * full, a newcomer whose author has less than its fair share displaces the newest reading of the
 * author with the most pending, so one spamming key (or a thousand) cannot keep an honest author's
 * reading out, and keys that already hold their share are refused. This peer's own
 * readings (`own`) always enter: they are in its outbox, which the node bounds.
 */
export class Mempool {
  private readonly readings = new Map<string, Reading>()
  private readonly own = new Set<string>()
  /** Pending reading ids by author (hex), in arrival order. */
  private readonly byAuthor = new Map<string, Set<string>>()
  private readonly stakes = new Map<string, StakeAnnouncement>()
  /** Pending transfers by sender (hex), by nonce. */
  private readonly transfers = new Map<string, Map<number, Transfer>>()
  private transferCount = 0
  private readonly maxTransfers: number
  /** One piece of evidence per offender (hex key). */
  private readonly evidence = new Map<string, Evidence>()
  private readonly maxReadings: number
  private readonly maxPerAuthor: number
  private readonly maxStakes: number

  constructor(opts: MempoolOptions = {}) {
    this.maxReadings = opts.maxReadings ?? MAX_PENDING_READINGS
    this.maxPerAuthor = opts.maxPerAuthor ?? MAX_PENDING_PER_AUTHOR
    this.maxStakes = opts.maxStakes ?? MAX_PENDING_STAKES
    this.maxTransfers = opts.maxTransfers ?? 10_000
  }

  get size(): number {
    return this.readings.size + this.stakes.size + this.transferCount
  }

  /**
   * Take a transfer in: one per sender and nonce (the first seen wins: a second one is a double
   * spend that only one block can hold), at most MAX_TRANSFERS_PER_SENDER per sender.
   */
  addTransfer(t: Transfer): 'added' | 'known' | 'full' {
    const from = toHex(t.from)
    const mine = this.transfers.get(from)
    if (mine?.has(t.nonce) === true) return 'known'
    if ((mine?.size ?? 0) >= MAX_TRANSFERS_PER_SENDER || this.transferCount >= this.maxTransfers) return 'full'
    if (mine === undefined) this.transfers.set(from, new Map([[t.nonce, t]]))
    else mine.set(t.nonce, t)
    this.transferCount++
    return 'added'
  }

  hasTransfer(t: Transfer): boolean {
    return this.transfers.get(toHex(t.from))?.get(t.nonce)?.idHex === t.idHex
  }

  /** Pending transfers of one sender (hex), by nonce. */
  transfersOf(fromHex: string): Transfer[] {
    return [...(this.transfers.get(fromHex)?.values() ?? [])].sort((a, b) => a.nonce - b.nonce)
  }

  private dropTransfer(fromHex: string, nonce: number): void {
    const mine = this.transfers.get(fromHex)
    if (mine?.delete(nonce) === true) this.transferCount--
    if (mine?.size === 0) this.transfers.delete(fromHex)
  }

  hasReading(idHex: string): boolean {
    return this.readings.has(idHex)
  }

  /** Readings of one author (hex key) in the pool. */
  readingsOf(authorHex: string): number {
    return this.byAuthor.get(authorHex)?.size ?? 0
  }

  /**
   * Whether a reading from the network would be taken in (before its signature is checked: a
   * refusal costs no verification): not when its author is at quota, nor when the pool is full
   * and its author already has its fair share of it (the pool divided among the authors pending),
   * so a thousand spamming keys that filled the pool cannot go on displacing each other.
   */
  admits(r: Reading): 'author-quota' | 'full' | undefined {
    const pending = this.byAuthor.get(toHex(r.author))?.size ?? 0
    if (pending >= this.maxPerAuthor) return 'author-quota'
    if (this.readings.size < this.maxReadings) return undefined
    const fairShare = Math.floor(this.maxReadings / (this.byAuthor.size + (pending === 0 ? 1 : 0)))
    return pending < fairShare ? undefined : 'full'
  }

  /** Take a reading in, within the bounds (see the class comment). */
  addReading(r: Reading, opts: { own?: boolean } = {}): AddResult {
    if (this.readings.has(r.idHex)) {
      if (opts.own === true) this.own.add(r.idHex)
      return 'known'
    }
    const author = toHex(r.author)
    const mine = this.byAuthor.get(author)
    if (opts.own !== true) {
      const refused = this.admits(r)
      if (refused !== undefined) return refused
      if (this.readings.size >= this.maxReadings && !this.evictFromLargest(author)) return 'full'
    }
    this.readings.set(r.idHex, r)
    if (opts.own === true) this.own.add(r.idHex)
    if (mine === undefined) this.byAuthor.set(author, new Set([r.idHex]))
    else mine.add(r.idHex)
    return 'added'
  }

  /** Make room: drop the newest non-own reading of the author with the most pending (not `newcomer`'s). */
  private evictFromLargest(newcomer: string): boolean {
    let victim: string | undefined
    let most = this.byAuthor.get(newcomer)?.size ?? 0
    for (const [author, ids] of this.byAuthor) {
      if (ids.size > most) {
        most = ids.size
        victim = author
      }
    }
    if (victim === undefined) return false
    const ids = [...(this.byAuthor.get(victim) ?? [])].reverse()
    const drop = ids.find((id) => !this.own.has(id))
    return drop !== undefined && this.dropReading(drop)
  }

  /** Forget a reading (one our own candidate could not hold: see ChainService.onSlot). */
  dropReading(idHex: string): boolean {
    const r = this.readings.get(idHex)
    if (r === undefined) return false
    this.readings.delete(idHex)
    this.own.delete(idHex)
    const author = toHex(r.author)
    const ids = this.byAuthor.get(author)
    ids?.delete(idHex)
    if (ids?.size === 0) this.byAuthor.delete(author)
    return true
  }

  /** Keeps the highest seq per validator; false when this one is not newer. */
  addStake(s: StakeAnnouncement): boolean {
    const key = toHex(s.validator)
    const prev = this.stakes.get(key)
    if (prev !== undefined && prev.seq >= s.seq) return false
    // Full: a validator already pending may update; a new key waits until some become final.
    if (prev === undefined && this.stakes.size >= this.maxStakes) return false
    this.stakes.set(key, s)
    return true
  }

  /** Drop a validator's pending announcement (one that broke a block rule when proposed). */
  dropStake(validatorHex: string): boolean {
    return this.stakes.delete(validatorHex)
  }

  /** Keeps one piece of evidence per offender; false when it has one (or the pool is full). */
  addEvidence(e: Evidence): boolean {
    const key = toHex(e.a.proposer)
    if (this.evidence.has(key) || this.evidence.size >= MAX_EVIDENCE) return false
    this.evidence.set(key, e)
    return true
  }

  hasEvidenceAgainst(key: string): boolean {
    return this.evidence.has(key)
  }

  /**
   * Records not yet in the chain ending at `tip`, in a deterministic order, within the limits;
   * readings dated after `latestTime` (not valid in the block being built yet) are left for later.
   * Readings are taken fairly: round-robin across authors (the author with the oldest reading
   * first), oldest first within an author, so one author's backlog cannot fill a block while
   * another author waits.
   */
  pending(
    chain: Chain,
    tip: BlockNode = chain.head,
    window: { readonly earliest: number; readonly latest: number } = {
      earliest: Number.NEGATIVE_INFINITY,
      latest: Number.POSITIVE_INFINITY,
    },
    /** The slot of the block being built (balances as of it; stake seqs up to it). */
    slot = tip.slot + 1,
  ): Pending {
    const p = chain.net.params
    const byTime = (a: Reading, b: Reading) => a.time - b.time || (a.idHex < b.idHex ? -1 : 1)
    const queues: Reading[][] = []
    for (const ids of this.byAuthor.values()) {
      const q: Reading[] = []
      for (const id of ids) {
        const r = this.readings.get(id)
        if (r !== undefined && r.time <= window.latest && r.time >= window.earliest && !chain.readingInChain(id, tip))
          q.push(r)
      }
      if (q.length > 0) queues.push(q.sort(byTime))
    }
    queues.sort((a, b) => byTime(a[0], b[0]))
    const readings: Reading[] = []
    for (let round = 0; readings.length < p.maxReadingsPerBlock && queues.length > 0; round++) {
      let any = false
      for (const q of queues) {
        if (round < q.length && readings.length < p.maxReadingsPerBlock) {
          readings.push(q[round])
          any = true
        }
      }
      if (!any) break
    }
    const evidence = [...this.evidence.entries()]
      .filter(([key]) => !isSlashed(tip.state, key))
      .slice(0, p.maxEvidencePerBlock)
    // Evidence is applied first: an offender's announcement in the same block would be SLASHED.
    const offenders = new Set(evidence.map(([key]) => key))
    // Balances as the block will see them (unbonding released later is not counted on), so the
    // transfers and stakes taken are ones the block can pay for, in its order.
    const accounts = new Map<string, Account>()
    const account = (key: string) => accounts.get(key) ?? accountAt(tip.state, key, slot)
    if (!chain.net.ledger) for (const key of offenders) accounts.set(key, { ...account(key), free: 0 })
    const transfers: Transfer[] = []
    for (const from of [...this.transfers.keys()].sort()) {
      for (const t of this.transfersOf(from)) {
        const sender = account(from)
        const problem = transferProblem(sender, t)
        if (problem === 'STALE_NONCE') continue
        if (problem !== undefined || transfers.length >= p.maxTransfersPerBlock) break
        accounts.set(from, { ...sender, free: sender.free - t.amount, nonce: t.nonce })
        const to = toHex(t.to)
        accounts.set(to, { ...account(to), free: account(to).free + t.amount })
        transfers.push(t)
      }
    }
    const stakes: StakeAnnouncement[] = []
    // New keys only while the stake table has room (TABLE_FULL).
    let room = p.maxValidators - tip.state.stakes.size
    for (const [key, s] of this.stakes) {
      if (stakes.length >= p.maxStakesPerBlock) break
      if (
        s.seq <= (tip.state.stakes.get(key)?.seq ?? tip.state.seqFloor) ||
        s.seq > slot ||
        isSlashed(tip.state, key) ||
        offenders.has(key) ||
        (chain.net.ledger && s.stake > stakeLimit(account(key)))
      )
        continue
      if (!tip.state.stakes.has(key)) {
        if (room <= 0) continue
        room--
      }
      stakes.push(s)
      // A higher stake bonds the difference from free (a reading fee must be paid after it).
      const acc = account(key)
      if (chain.net.ledger && s.stake > acc.bonded)
        accounts.set(key, { ...acc, free: acc.free - (s.stake - acc.bonded), bonded: s.stake })
    }
    // The reading fee (genesis networks): an author's readings while it can pay, in the order chosen.
    const fee = readingFeeOf(chain.net)
    const paid =
      fee === 0
        ? readings
        : readings.filter((r) => {
            const key = toHex(r.author)
            const acc = account(key)
            if (acc.free < fee) return false
            accounts.set(key, { ...acc, free: acc.free - fee })
            return true
          })
    return { readings: paid, stakes, transfers, evidence: evidence.map(([, e]) => e) }
  }

  /** Drop readings dated before `earliest`: no later block can take them. Returns them. */
  dropOlderThan(earliest: number): Reading[] {
    const out: Reading[] = []
    for (const r of [...this.readings.values()]) {
      if (r.time < earliest) {
        this.dropReading(r.idHex)
        out.push(r)
      }
    }
    return out
  }

  /** Drop what the finalized chain now holds. Returns the dropped ids. */
  pruneFinal(chain: Chain): string[] {
    const dropped: string[] = []
    for (const id of [...this.readings.keys()]) {
      if (chain.finalReadings.has(id)) {
        this.dropReading(id)
        dropped.push(id)
      }
    }
    for (const key of [...this.evidence.keys()]) if (isSlashed(chain.root.state, key)) this.evidence.delete(key)
    for (const [key, s] of this.stakes) {
      const floor = chain.root.state.stakes.get(key)?.seq ?? chain.root.state.seqFloor
      if (s.seq <= floor || isSlashed(chain.root.state, key)) {
        this.stakes.delete(key)
        dropped.push(s.idHex)
      }
    }
    for (const from of [...this.transfers.keys()]) {
      const nonce = chain.root.state.accounts.get(from)?.nonce ?? 0
      for (const t of this.transfersOf(from)) {
        if (t.nonce > nonce) break
        this.dropTransfer(from, t.nonce)
        dropped.push(t.idHex)
      }
    }
    return dropped
  }
}
