import { toHex } from '../core/bytes.js'
import {
  type BlockNode,
  Chain,
  type ImportResult,
  RECENT_FINAL,
  type RecentFinal,
  type TrustedCheckpoint,
} from '../core/chain.js'
import type { Signer } from '../core/crypto.js'
import { BlockError, RecordError, type Verdict } from '../core/errors.js'
import { MAX_PENDING_PER_AUTHOR, MAX_TRANSFERS_PER_SENDER, Mempool } from '../core/mempool.js'
import { EarlyPool, OrphanPool } from '../core/orphans.js'
import { type ChainConfig, slotAt, slotStart } from '../core/params.js'
import { buildCandidate, proposalRank, votesPending } from '../core/proposer.js'
import {
  type Block,
  createReading,
  createStake,
  createTransfer,
  type Evidence,
  type Reading,
  type StakeAnnouncement,
  signBlock,
  type Transfer,
  verifyBlockSignature,
} from '../core/records.js'
import {
  accountAt,
  churnFor,
  countedStake,
  hasRoomFor,
  isEjected,
  isSlashed,
  queuedStake,
  readingFeeOf,
  stakeLimit,
  transferProblem,
} from '../core/state.js'
import {
  blockReadingWindow,
  gossipReadingWindow,
  validateEvidence,
  validateReading,
  validateStake,
  validateTransfer,
} from '../core/validation.js'
import type { Store } from '../storage/store.js'
import { TypedEmitter } from '../util/emitter.js'

export interface ChainEvents {
  /** A candidate was imported into the tree (local or from the network). */
  candidate: { node: BlockNode; local: boolean }
  /** A block joined the head chain (again, after a reorg). */
  block: { node: BlockNode }
  head: { node: BlockNode }
  reorg: { from: BlockNode; to: BlockNode; depth: number }
  finalized: { node: BlockNode }
  /** One of this peer's candidates joined the head chain. */
  won: { node: BlockNode }
  /** This peer's readings too old for any block: dropped from the outbox. */
  expired: { readings: Reading[]; message: string }
  /** Slashing protection refused to sign this slot's candidate (after a restart, until our view catches up). */
  protected: { slot: number; sourceEpoch: number }
  /** Evidence of a slashable offence: found in our tree, received, or in a block. */
  evidence: { evidence: Evidence; offender: string }
  /** A final block holds evidence: the offender (hex key) is slashed for good. */
  slashed: { evidence: Evidence; offender: string; node: BlockNode }
  /** Something the user should know: e.g. the stake asked for is more than this account holds. */
  warning: { message: string }
  /** A parent we do not have; sync fetches it by hash, first from `source` (who sent the child). */
  'missing-parent': { parentHex: string; childHex: string; source?: string }
}

/** Warn of a stake flood when the churn limit needs more blocks than this to let the queue in. */
const CHURN_WARN_BLOCKS = 16

/** This peer's own readings waiting to be final; a new one beyond this is refused (BusyError). */
export const MAX_OUTBOX = 4096

/** Too many of this peer's readings are still waiting to be final: try again later. */
export class BusyError extends Error {
  override name = 'BusyError'
  readonly code = 'TOO_MANY_PENDING'
  constructor(pending: number) {
    super(
      `${pending} readings of this peer are still waiting to be final (at most ${MAX_OUTBOX}): try again once some are final`,
    )
  }
}

/** A transfer this peer cannot send, in words for its user (a 400 in the API, a line in the CLI). */
export class TransferError extends Error {
  override name = 'TransferError'
  constructor(
    readonly code: 'BAD_AMOUNT' | 'SELF' | 'INSUFFICIENT_BALANCE' | 'TOO_MANY_PENDING',
    message: string,
  ) {
    super(message)
  }
}

/** A stake this peer cannot announce, in words for its user. */
export class StakeError extends RangeError {
  override name = 'StakeError'
}

/** The data dir's final chain contradicts --checkpoint. */
export class CheckpointError extends Error {
  override name = 'CheckpointError'
  constructor(cp: TrustedCheckpoint, ours: string | undefined) {
    super(
      `this data dir's final block at height ${cp.height} is ${ours?.slice(0, 16) ?? 'missing'}, not the --checkpoint ${cp.hashHex.slice(0, 16)}: it followed another chain; start with another --data-dir (or --name)`,
    )
  }
}

export interface ChainServiceOptions {
  readonly net: ChainConfig
  readonly store: Store
  readonly signer: Signer
  /** Unix ms; injected so tests can drive time. */
  readonly now: () => number
  /** The stake this peer wants (0: observer). */
  readonly stake: number
  /** --checkpoint: a final block this chain must hold. */
  readonly checkpoint?: TrustedCheckpoint
  readonly maxOrphans?: number
}

/**
 * The peer's chain: fork choice, mempool, orphans, storage and this validator's own records. The
 * network layer feeds it decoded records and gossips what it returns; it emits typed events.
 * (Over 300 lines, one concern: the chain as this node owns and persists it.)
 */
export class ChainService {
  readonly events = new TypedEmitter<ChainEvents>()
  readonly net: ChainConfig
  readonly chain: Chain
  readonly mempool = new Mempool()
  readonly orphans: OrphanPool
  /** Blocks of a slot our clock has not reached (released by `releaseEarly`, every slot). */
  readonly early = new EarlyPool()
  readonly signer: Signer
  readonly me: string
  private readonly store: Store
  private readonly now: () => number
  private desiredStake: number
  private ownSeq: number
  private writes: Promise<void> = Promise.resolve()
  private outbox = new Map<string, Reading>()

  private constructor(opts: ChainServiceOptions, chain: Chain, ownSeq: number) {
    this.net = opts.net
    this.store = opts.store
    this.signer = opts.signer
    this.now = opts.now
    this.desiredStake = opts.stake
    this.chain = chain
    this.ownSeq = ownSeq
    this.me = toHex(opts.signer.publicKey)
    this.orphans = new OrphanPool(opts.maxOrphans ?? 1024)
  }

  /** Load the chain from the store, re-import the tree, refill the mempool from the outbox. */
  static async create(opts: ChainServiceOptions): Promise<ChainService> {
    const loaded = await opts.store.loadChain()
    const cp = opts.checkpoint
    if (cp !== undefined && loaded.root.height >= cp.height) {
      const ours = await opts.store.finalHashAt(cp.height)
      if (ours !== cp.hashHex) throw new CheckpointError(cp, ours)
    }
    // The final blocks just below the root, so a carried vote's target is judged on chain, and a
    // block's source placed, as on every other peer (core/validation.ts participates, sourceSlotOf).
    const recentFinal: RecentFinal[] = []
    for (let h = Math.max(1, loaded.root.height - RECENT_FINAL); h < loaded.root.height; h++) {
      const hashHex = await opts.store.finalHashAt(h)
      const block = hashHex === undefined ? undefined : await opts.store.blockByHash(hashHex)
      if (hashHex !== undefined && block !== undefined) recentFinal.push({ hashHex, height: h, slot: block.slot })
    }
    const chain = new Chain(opts.net, {
      root: loaded.root,
      finalReadings: loaded.finalReadings,
      checkpoint: cp,
      recentFinal,
    })
    const me = toHex(opts.signer.publicKey)
    const seqInChain = loaded.root.state.stakes.get(me)?.seq ?? 0
    const svc = new ChainService(opts, chain, Math.max(seqInChain, loaded.outboxStake?.seq ?? 0))
    for (const b of loaded.unfinal) {
      try {
        svc.importAndPersist(b, false)
      } catch {
        // A stored block that no longer imports (e.g. its stake expired meanwhile) is dropped.
      }
    }
    for (const r of loaded.outboxReadings) {
      svc.outbox.set(r.idHex, r)
      svc.mempool.addReading(r, { own: true })
    }
    if (loaded.outboxStake !== undefined) svc.mempool.addStake(loaded.outboxStake)
    const nonce = loaded.root.state.accounts.get(me)?.nonce ?? 0
    const done = loaded.outboxTransfers.filter((t) => t.nonce <= nonce)
    for (const t of loaded.outboxTransfers) if (t.nonce > nonce) svc.mempool.addTransfer(t)
    if (done.length > 0) await opts.store.dropOutboxTransfers(done)
    // A stake this account cannot back (as far as our chain knows) is not announced: the caller
    // decides (the CLI waits to sync, then calls setStake or says no), rather than a warning and
    // a lower stake a moment later.
    const limit = svc.stakeLimit()
    if (limit !== undefined && opts.stake > limit) svc.desiredStake = svc.chain.head.state.stakes.get(me)?.stake ?? 0
    await svc.flush()
    return svc
  }

  get stake(): number {
    return this.desiredStake
  }

  get config(): ChainConfig {
    return this.net
  }

  root(): BlockNode {
    return this.chain.root
  }

  head(): BlockNode {
    return this.chain.head
  }

  currentSlot(): number {
    return slotAt(this.net.params, this.now())
  }

  /** Wait for every pending storage write. */
  flush(): Promise<void> {
    return this.writes
  }

  private persist(result: ImportResult): void {
    this.writes = this.writes.then(() => this.store.saveImport(result))
  }

  private importAndPersist(block: Block, local: boolean, expectedHash?: Uint8Array): ImportResult {
    const result = this.chain.import(block, this.now(), expectedHash)
    this.persist(result)
    // Every record of every candidate is kept until final: a losing candidate loses nothing.
    for (const r of block.readings) if (!this.chain.finalReadings.has(r.idHex)) this.mempool.addReading(r)
    for (const s of block.stakes) this.mempool.addStake(s)
    for (const t of block.transfers) this.mempool.addTransfer(t)
    this.emitImport(result, local)
    return result
  }

  private emitImport(result: ImportResult, local: boolean): void {
    this.events.emit('candidate', { node: result.node, local })
    if (result.reorgDepth > 0)
      this.events.emit('reorg', { from: result.oldHead, to: result.head, depth: result.reorgDepth })
    for (const node of result.canonical) {
      this.events.emit('block', { node })
      if (node.proposerHex === this.me) this.events.emit('won', { node })
    }
    if (result.head !== result.oldHead) {
      this.events.emit('head', { node: result.head })
      this.watchChurn(result.head)
    }
    for (const node of result.finalized) {
      this.events.emit('finalized', { node })
      for (const e of node.block?.evidence ?? []) {
        this.events.emit('slashed', { evidence: e, offender: toHex(e.a.proposer), node })
      }
      for (const r of node.block?.readings ?? []) this.outbox.delete(r.idHex)
    }
    for (const e of [...result.evidence, ...(result.node.block?.evidence ?? [])]) this.learnEvidence(e)
    if (result.finalized.length > 0) this.mempool.pruneFinal(this.chain)
  }

  private churnWarnedAt = Number.NEGATIVE_INFINITY

  /**
   * New stake growing fast (so much waiting to count that the churn limit needs more than
   * CHURN_WARN_BLOCKS blocks to let it in; a few validators joining a fresh network take one to
   * three): said once a minute, so a stake flood is visible while it enters block by block.
   */
  private watchChurn(head: BlockNode): void {
    const now = this.now()
    if (now - this.churnWarnedAt < 60_000 || head.state.queue.length === 0) return
    const queued = queuedStake(head.state)
    const p = this.net.params
    const counted = countedStake(p, head.state, head.slot)
    let blocks = 0
    for (let left = queued.stake, c = counted; left > 0 && blocks <= CHURN_WARN_BLOCKS; blocks++) {
      const enter = Math.min(left, churnFor(p, c))
      left -= enter
      c += enter
    }
    if (blocks <= CHURN_WARN_BLOCKS) return
    this.churnWarnedAt = now
    this.events.emit('warning', {
      message: `new stake is growing fast: ${queued.stake} from ${queued.validators} validator(s) waits to count, ${counted} counts now; at most ${churnFor(p, counted)} enters per block (the churn limit)`,
    })
  }

  /** Evidence we had not seen: kept until a final block slashes the offender, told to the network. */
  private learnEvidence(e: Evidence): boolean {
    const offender = toHex(e.a.proposer)
    this.chain.noteEvidence(e)
    if (isSlashed(this.chain.root.state, offender) || !this.mempool.addEvidence(e)) return false
    this.events.emit('evidence', { evidence: e, offender })
    return true
  }

  /**
   * Blocks of a chain that conflicts with ours (a peer we are about to refuse): each signed
   * header is checked against what its proposer signed on our side. Returns the evidence found.
   */
  inspectForeign(blocks: readonly Block[]): number {
    let found = 0
    for (const b of blocks) {
      if (!verifyBlockSignature(this.net, b)) continue
      const e = this.chain.inspect(b)
      if (e !== undefined && this.learnEvidence(e)) found++
    }
    return found
  }

  /** Evidence from the network: valid and new (accept), known or already slashed (ignore). */
  receiveEvidence(e: Evidence): Verdict {
    validateEvidence(this.net, e)
    return this.learnEvidence(e) ? 'accept' : 'ignore'
  }

  /**
   * A block from the network (gossip, sync, or fetched by hash). Imports it and any orphans waiting
   * for it. Unknown parent: kept as an orphan, 'missing-parent' is emitted (with the peer it came
   * from), verdict 'ignore'.
   */
  receiveBlock(block: Block, opts: { expectedHash?: Uint8Array; source?: string } = {}): Verdict {
    try {
      this.importAndPersist(block, false, opts.expectedHash)
    } catch (err) {
      if (!(err instanceof BlockError)) throw err
      if (err.code === 'FUTURE_SLOT' && verifyBlockSignature(this.net, block)) {
        this.early.add(block, slotStart(this.net.params, block.slot) - this.net.params.maxClockDriftMs, this.now())
      }
      if (err.code === 'UNKNOWN_PARENT') {
        if (this.orphans.add(block))
          this.events.emit('missing-parent', {
            parentHex: toHex(block.parent),
            childHex: block.hashHex,
            source: opts.source,
          })
      }
      if (err.action === 'REJECT') throw err
      return 'ignore'
    }
    this.adoptOrphans(block.hashHex)
    return 'accept'
  }

  /** Import the held blocks whose slot our clock has now reached (the slot loop calls it first in every slot). */
  releaseEarly(): void {
    const reached = slotAt(this.net.params, this.now() + this.net.params.maxClockDriftMs)
    for (const b of this.early.takeDue(reached)) {
      try {
        this.receiveBlock(b)
      } catch {
        // Invalid after all: dropped (its sender was answered IGNORE when it came).
      }
    }
  }

  private adoptOrphans(parentHex: string): void {
    const queue = [parentHex]
    while (queue.length > 0) {
      for (const child of this.orphans.takeChildren(queue.shift() as string)) {
        try {
          this.importAndPersist(child, false)
          queue.push(child.hashHex)
        } catch {
          // An invalid orphan is dropped; its sender was already answered.
        }
      }
    }
  }

  /** A reading from the network: accept (new, valid), ignore (known or final) or throw a RecordError. */
  receiveReading(r: Reading): Verdict {
    if (this.chain.finalReadings.has(r.idHex) || this.mempool.hasReading(r.idHex)) return 'ignore'
    // Over its author's quota, or the pool full: ignored (one too many, valid or not: checked
    // before the signature, so spam costs no verification), and it counts against the peer that
    // delivered it in gossip scoring (network/gossip.ts SpamMeter).
    const refused = this.mempool.admits(r)
    // In a genesis network with a reading fee: an author that cannot pay for this one on top of
    // those it has pending is spam too (no block could take them all).
    const fee = readingFeeOf(this.net)
    if (fee > 0 && refused === undefined) {
      const key = toHex(r.author)
      const head = this.chain.head
      if (accountAt(head.state, key, head.slot + 1).free < fee * (this.mempool.readingsOf(key) + 1))
        throw new RecordError('IGNORE', 'FEE_UNPAID', { reading: r.idHex })
    }
    if (refused === undefined) validateReading(this.net, r, gossipReadingWindow(this.net, this.now()), 'IGNORE')
    const added = refused ?? this.mempool.addReading(r)
    if (added === 'author-quota' || added === 'full') {
      throw new RecordError('IGNORE', added === 'full' ? 'POOL_FULL' : 'AUTHOR_QUOTA', { reading: r.idHex })
    }
    return added === 'added' ? 'accept' : 'ignore'
  }

  receiveStake(s: StakeAnnouncement): Verdict {
    const key = toHex(s.validator)
    // A new key while the stake table is full: no block could take it. Decided before the
    // signature is checked (a flood of fresh keys costs no verification once the table is full),
    // and it counts against the peer that delivered it in gossip scoring, as reading spam does.
    if (!hasRoomFor(this.net.params, this.chain.head.state, key))
      throw new RecordError('IGNORE', 'TABLE_FULL', { validator: key })
    validateStake(this.net, s)
    if (isSlashed(this.chain.head.state, key) || this.chain.isExcluded(key)) return 'ignore'
    const root = this.chain.root.state
    if (s.seq <= (root.stakes.get(key)?.seq ?? root.seqFloor)) return 'ignore'
    // A seq no block can take for a while yet (a block takes seqs up to its slot): our clock may be the one behind.
    if (s.seq > slotAt(this.net.params, this.now()) + 2) return 'ignore'
    // In a genesis network a stake its account cannot back is not relayed (ignored, not punished:
    // tokens may be on their way in a block we have not seen).
    if (this.net.ledger) {
      const head = this.chain.head
      if (s.stake > stakeLimit(accountAt(head.state, key, head.slot + 1))) return 'ignore'
    }
    return this.mempool.addStake(s) ? 'accept' : 'ignore'
  }

  /**
   * A transfer from the network: REJECT when malformed or forged; ignore when its nonce is taken
   * already, too far ahead, or the sender cannot pay at our head (it may be able to later: this
   * is our view, not proof of a bad sender); accept when new to our pool.
   */
  receiveTransfer(t: Transfer): Verdict {
    validateTransfer(this.net, t)
    const head = this.chain.head
    const sender = accountAt(head.state, toHex(t.from), head.slot + 1)
    if (transferProblem(sender, t) === 'STALE_NONCE' || t.nonce > sender.nonce + MAX_TRANSFERS_PER_SENDER)
      return 'ignore'
    return this.mempool.addTransfer(t) === 'added' ? 'accept' : 'ignore'
  }

  /** Tokens this peer can still spend: its free balance at the head minus its pending transfers. */
  spendable(): { free: number; pending: number; nextNonce: number } {
    const acc = this.ownAccount()
    const mine = this.mempool.transfersOf(this.me).filter((t) => t.nonce > acc.nonce)
    const pending = mine.reduce((x, t) => x + t.amount, 0)
    return { free: acc.free - pending, pending, nextNonce: acc.nonce + mine.length + 1 }
  }

  /** Send tokens: checked against what this peer can spend, written to the outbox, then pending. */
  async submitTransfer(to: Uint8Array, amount: number): Promise<Transfer> {
    if (!Number.isSafeInteger(amount) || amount < 1)
      throw new TransferError('BAD_AMOUNT', `amount must be a whole number of at least 1, got ${amount}`)
    if (toHex(to) === this.me) throw new TransferError('SELF', "that is this peer's own address")
    const { free, pending, nextNonce } = this.spendable()
    if (amount > free) {
      throw new TransferError(
        'INSUFFICIENT_BALANCE',
        `not enough free tokens: ${free} spendable${pending > 0 ? ` (${pending} more in pending transfers)` : ''}, asked to send ${amount}`,
      )
    }
    const t = createTransfer(this.net, this.signer, to, amount, nextNonce)
    if (this.mempool.addTransfer(t) !== 'added') {
      throw new TransferError(
        'TOO_MANY_PENDING',
        `${MAX_TRANSFERS_PER_SENDER} transfers of this peer are still waiting for a block: try again once some are in`,
      )
    }
    await this.store.addOutboxTransfer(t)
    return t
  }

  /**
   * The most this peer may stake now: free + bonded at the head in a genesis network (undefined
   * in the open devnet, where stake is self-declared up to the cap).
   */
  stakeLimit(): number | undefined {
    return this.net.ledger ? stakeLimit(this.ownAccount()) : undefined
  }

  /** This peer's account at the head, as of now. */
  private ownAccount() {
    const head = this.chain.head
    return accountAt(head.state, this.me, Math.max(head.slot, slotAt(this.net.params, this.now())))
  }

  /**
   * A BPM typed by this peer's user: signed, checked, into our pool and out to the network
   * (`publish`) at once, then into the outbox on disk, and only then resolved (the user is told
   * it is saved). The write can wait behind the chain's: under a reading spam, with full blocks
   * stored three a slot, a reading put in the pool only after its write (about 0.7 s) missed our
   * own next candidate, which won, and was final a slot late (4.19 slots once against a goal of
   * 4). A write that fails takes it back out of the pool and throws (a candidate may already hold
   * it, so it can still become final).
   */
  async submitReading(bpm: number, publish?: (r: Reading) => void): Promise<Reading> {
    if (this.outbox.size >= MAX_OUTBOX) throw new BusyError(this.outbox.size)
    const fee = readingFeeOf(this.net)
    if (fee > 0) {
      // What our pending readings and transfers have not spent yet pays for this one.
      const waiting = this.mempool.readingsOf(this.me)
      const { free } = this.spendable()
      if (free < fee * (waiting + 1))
        throw new RecordError(
          'REJECT',
          'FEE_UNPAID',
          { fee, free, waiting },
          `a reading costs ${fee} token(s) on this network (readingFee) and this account has ${free} free for ${waiting + 1} reading(s): receive tokens first (Send tokens, from another account)`,
        )
    }
    const now = this.now()
    const r = createReading(this.net, this.signer, bpm, now)
    validateReading(this.net, r, gossipReadingWindow(this.net, now))
    this.outbox.set(r.idHex, r)
    // Our own readings always enter our pool: we propose them ourselves when we win.
    this.mempool.addReading(r, { own: true })
    publish?.(r)
    try {
      await this.store.addOutboxReading(r)
    } catch (err) {
      this.outbox.delete(r.idHex)
      this.mempool.dropReading(r.idHex)
      throw err
    }
    return r
  }

  /** Announce a stake (0 = leave) with the next seq; kept in the outbox until final. */
  async announceStake(stake: number): Promise<StakeAnnouncement> {
    if (!Number.isSafeInteger(stake) || stake < 0) throw new RangeError('stake must be a whole number >= 0')
    if (stake > this.net.params.maxStake)
      throw new StakeError(`stake ${stake} is above this network's cap of ${this.net.params.maxStake} per validator`)
    const limit = this.stakeLimit()
    if (limit !== undefined && stake > limit) throw new StakeError(stakeTooHigh(stake, limit))
    this.desiredStake = stake
    // Above our last seq, and at least the slot before this one: above any seq floor a pruning
    // could have raised (pruned entries were announced long ago), and never ahead of the block
    // that takes it by more than a slot of clock drift (a block takes a seq up to its slot).
    const head = this.chain.head.state
    const seqInHead = head.stakes.get(this.me)?.seq ?? head.seqFloor
    this.ownSeq = Math.max(this.ownSeq + 1, seqInHead + 1, slotAt(this.net.params, this.now()) - 1)
    const s = createStake(this.net, this.signer, stake, this.ownSeq)
    await this.store.setOutboxStake(s)
    this.mempool.addStake(s)
    return s
  }

  /** The stake announcement to make at start or now (renewal), if any. */
  stakeDue(slot: number): number | undefined {
    const entry = this.chain.head.state.stakes.get(this.me)
    if (isEjected(entry) && entry?.ejectedAt !== this.toldEjected && this.desiredStake > 0) {
      this.toldEjected = entry?.ejectedAt
      this.events.emit('warning', {
        message: `the inactivity leak took this validator's stake at slot ${entry?.ejectedAt} (no vote of it on the chain for ${this.net.params.inactivityBlocks} blocks while finality stalled); announcing ${this.desiredStake} again (it counts once finality moves again and its block is final)`,
      })
    }
    if (entry === undefined && this.desiredStake > 0 && !hasRoomFor(this.net.params, this.chain.head.state, this.me)) {
      if (!this.toldFull)
        this.events.emit('warning', {
          message: `the stake table is full (${this.net.params.maxValidators} validators, this network's maxValidators): this peer's stake of ${this.desiredStake} waits until entries lapse and are pruned`,
        })
      this.toldFull = true
    } else this.toldFull = false
    const pending = this.ownSeq > (entry?.seq ?? 0)
    if (pending) return undefined
    if (entry === undefined || entry.stake !== this.desiredStake) {
      return this.desiredStake > 0 || (entry?.stake ?? 0) > 0 ? this.desiredStake : undefined
    }
    if (entry.stake > 0 && slot - entry.renewedSlot > this.net.params.stakeTtlSlots / 2) return entry.stake
    return undefined
  }

  /** True once the chain at the head holds this peer's latest announcement. */
  ownStakeIncluded(): boolean {
    return (this.chain.head.state.stakes.get(this.me)?.seq ?? 0) >= this.ownSeq
  }

  /**
   * True once a final block holds this peer's latest announcement (a leave: the network has it
   * for good, and our vote is no longer needed for the blocks around it).
   */
  ownLeaveFinal(): boolean {
    return (this.chain.root.state.stakes.get(this.me)?.seq ?? 0) >= this.ownSeq
  }

  /** This validator's ticket rank at `slot` among the active validators (0: likely winner). */
  proposalRank(slot: number, cap: number): number {
    return proposalRank(this.chain, this.signer.publicKey, slot, cap)
  }

  /** Whether the last slot's votes are still arriving (core/proposer.ts, `votesPending`). */
  votesPending(slot: number): boolean {
    return votesPending(this.chain, slot)
  }

  /**
   * Slot tick: renew stake when due, then propose a candidate if there is work. The candidate is
   * checked by every block rule before it is signed, and signed only if the slashing protection
   * in the store allows it (docs/PROTOCOL.md section 5), so this key never signs two blocks of
   * one slot or a vote that surrounds one of its own, across restarts too.
   */
  async onSlot(slot: number, publish?: (block: Block) => void): Promise<Block | undefined> {
    await this.dropExpired(slot)
    const due = this.stakeDue(slot)
    if (due !== undefined) await this.announceDue(due)
    if (this.desiredStake === 0 && this.ownLeaveFinal()) return undefined
    // Should a record still break a block rule (the mempool accepted it under another bound), it
    // is dropped and the candidate built again once, rather than losing our turn (and vote).
    for (let attempt = 0; ; attempt++) {
      const unsigned = buildCandidate(this.chain, this.mempool, this.signer, slot)
      if (unsigned === undefined) return undefined
      try {
        this.chain.check(unsigned, this.now())
      } catch (err) {
        if (attempt > 0 || !(err instanceof BlockError) || !this.dropOffending(err)) throw err
        continue
      }
      if (!this.store.mayPropose(unsigned.slot, unsigned.source.epoch)) {
        this.events.emit('protected', { slot, sourceEpoch: unsigned.source.epoch })
        return undefined
      }
      const block = signBlock(this.net, this.signer, unsigned)
      // Out first, then imported here: it passed every rule above, and importing a full block
      // (its state, the store, the events) took 30-250 ms that the other peers waited for it.
      publish?.(block)
      this.importAndPersist(block, true)
      return block
    }
  }

  /**
   * Readings too old for any block from `slot` on (maxReadingAgeMs) leave the pool, and ours the
   * outbox, with a warning: they can never be final (a peer offline for longer than that).
   */
  private async dropExpired(slot: number): Promise<void> {
    const expired = this.mempool.dropOlderThan(blockReadingWindow(this.net, slot).earliest)
    const ours = expired.filter((r) => this.outbox.delete(r.idHex))
    if (ours.length === 0) return
    await this.store.dropOutboxReadings(ours)
    const days = this.net.params.maxReadingAgeMs / 86_400_000
    this.events.emit('expired', {
      readings: ours,
      message: `${ours.length} reading(s) of this peer older than ${days} days can no longer go in a block (this network's maxReadingAgeMs): dropped from the outbox`,
    })
  }

  /** Drop the pending record a candidate of ours failed on (a reading, or an announcement). */
  private dropOffending(err: BlockError): boolean {
    const { record, validator } = err.details
    if (typeof record === 'string' && this.mempool.dropReading(record)) return true
    return (err.code === 'STALE_SEQ' || err.code === 'SLASHED') && typeof validator === 'string'
      ? this.mempool.dropStake(validator)
      : false
  }

  /**
   * The slot tick's announcement (start, change or renewal). In a genesis network a stake this
   * account cannot back (its tokens moved, or it never had them) is not announced: one warning,
   * and the peer runs on with what the chain has.
   */
  private async announceDue(stake: number): Promise<void> {
    try {
      await this.announceStake(stake)
    } catch (err) {
      if (!(err instanceof StakeError)) throw err
      if (!this.warnedStake) this.events.emit('warning', { message: err.message })
      this.warnedStake = true
      this.desiredStake = this.chain.head.state.stakes.get(this.me)?.stake ?? 0
    }
  }

  private warnedStake = false
  /** The ejection (its slot) this peer has told its user about. */
  private toldEjected: number | undefined
  /** True while the warning that the stake table is full has been given (given again after it had room). */
  private toldFull = false

  /**
   * This peer's records not yet in the head chain, to gossip again: of its readings the oldest
   * `MAX_PENDING_PER_AUTHOR` (after a long time offline the outbox can hold 4,096; every other
   * pool takes no more of one author's pending, and counts the rest against the peer that sent
   * them as spam, so more would only cost us our gossip score).
   */
  unconfirmed(): { readings: Reading[]; stakes: StakeAnnouncement[]; transfers: Transfer[] } {
    const readings = [...this.outbox.values()]
      .filter((r) => !this.chain.readingInChain(r.idHex))
      .sort((x, y) => x.time - y.time || (x.idHex < y.idHex ? -1 : 1))
      .slice(0, MAX_PENDING_PER_AUTHOR)
    const stakes = this.ownStakeIncluded()
      ? []
      : this.mempool
          .pending(this.chain, this.chain.head, undefined, slotAt(this.net.params, this.now()) + 1)
          .stakes.filter((s) => toHex(s.validator) === this.me)
    const nonce = this.chain.head.state.accounts.get(this.me)?.nonce ?? 0
    const transfers = this.mempool.transfersOf(this.me).filter((t) => t.nonce > nonce)
    return { readings, stakes, transfers }
  }

  /** True when the block is in the tree, or at or below the finalized height. */
  holds(block: { readonly hashHex: string; readonly height: number }): boolean {
    return this.chain.has(block.hashHex) || block.height <= this.chain.root.height
  }

  /** Hash (hex) of the final block at `height`, if we have one. */
  finalHashAt(height: number): Promise<string | undefined> {
    return this.store.finalHashAt(height)
  }

  /** Up to `count` blocks of the canonical chain (final, then not yet final) from `from`, as bytes. */
  async canonicalBlocks(from: number, count: number): Promise<Uint8Array[]> {
    // One consistent cut: no write pending (finality prunes final blocks from memory before their
    // write lands), then the root and the head chain taken together, synchronously. Reading the
    // store first and the tree after let the root move in between and left a gap in the answer.
    for (let i = 0; i < 100; i++) {
      const pending = this.writes
      await pending
      if (pending === this.writes) break
    }
    const rootHeight = this.chain.root.height
    const head = this.chain.chainTo()
    const start = Math.max(1, from)
    const out: Uint8Array[] = []
    if (start <= rootHeight)
      out.push(...(await this.store.finalBlocksFrom(start, Math.min(count, rootHeight - start + 1))))
    for (const n of head) {
      if (out.length >= count) break
      if (n.height >= start && n.block !== undefined) out.push(n.block.bytes)
    }
    return out
  }

  /** A block by hash, from the tree or the store. */
  async blockByHash(hashHex: string): Promise<Block | undefined> {
    return this.chain.get(hashHex)?.block ?? (await this.store.blockByHash(hashHex))
  }
}

/** The one message for a stake beyond what a genesis-network account holds. */
export function stakeTooHigh(stake: number, limit: number): string {
  return `stake ${stake} is more than this account holds: ${limit} (free + bonded) on this network; ask for tokens (a transfer) or stake at most ${limit}`
}
