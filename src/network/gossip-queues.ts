import { TopicValidatorResult } from '@libp2p/interface'
import { Fifo } from '../util/fifo.js'
import type { Topic } from './topics.js'

/**
 * Gossip validation queues (as Lodestar's network processor): every received message waits in
 * its topic's bounded queue and is validated in priority order, a turn of at most `turnMs` at a
 * time, then the event loop serves everything else (slot timers, votes, typed readings, other
 * peers' streams) before the next turn.
 *
 * Why: gossipsub reads a peer's stream with `for await`, and a buffered backlog resolves in
 * microtasks only. A relay that had accepted 10,000 spam readings a second kept its peers
 * validating them for 7-10 s in one turn of the event loop (measured: a 9.5 s gap between two
 * 50 ms timer ticks), so no slot timer fired, no vote went out and finality stalled. Validating
 * in turns alone let a relay's backlog of readings delay the blocks behind it in the same stream;
 * the order is what keeps the honest path fast:
 * - blocks first (everything waits on them), then evidence, stakes, transfers, readings;
 * - within a topic, messages the node marks urgent (a reading whose author holds counted stake)
 *   before the others; in each lane the senders take turns, each sender's messages oldest first;
 * - a peer's next RPC is read only while fewer than `READ_AHEAD` of its messages wait here, so
 *   a block is read (and validated first) even behind hundreds of readings its sender forwarded
 *   before it, and a peer that sends faster than we validate is slowed down by TCP: its backlog
 *   stays on its side; a full queue (a safety bound) drops the oldest message of its busiest
 *   sender unvalidated, as gossip IGNORE.
 */

/** Validation order: a block unlocks everything after it; readings are the cheapest to lose. */
export const GOSSIP_PRIORITY: readonly Topic[] = ['candidates', 'evidence', 'stakes', 'transfers', 'readings']

/**
 * Messages waiting per topic (both lanes together); past it a regular one of the busiest sender
 * goes. A safety bound: gossipsub reads a peer's next RPC only while it has room to read ahead
 * (network/gossip.ts, `awaitRpcHandler`), so a queue holds at most `READ_AHEAD` messages plus one
 * RPC (up to 256) per connected peer.
 * (Dropping early does not help: a peer whose messages are dropped at once is read at once, and
 * gossipsub keeps two minutes of bookkeeping per message: a spammer's 100,000 messages took the
 * receiving peer to 385 MB that way, where validating them paces its stream.)
 */
export const GOSSIP_QUEUE_MAX: Readonly<Record<Topic, number>> = {
  candidates: 2048,
  evidence: 2048,
  stakes: 8192,
  transfers: 8192,
  readings: 8192,
}

/** How long validations may hold the event loop in one turn. */
export const TURN_MS = 20

/**
 * How far gossipsub reads ahead of one peer's validations: its next RPC is read while fewer than
 * this many of its messages (and bytes) wait here. One message at a time (gossipsub's
 * `awaitRpcMessageHandler`) kept a block behind every reading its sender had forwarded before it
 * in the same stream: under a 1,000-key spam, 160-370 of them, 0.2-0.6 s (and up to 1.8 s) before
 * the block was even read, while validating it took 40-100 ms. Reading ahead lets the block
 * overtake them in the queues; the bound keeps a faster sender's backlog on its side.
 */
export const READ_AHEAD: Readonly<{ messages: number; bytes: number }> = { messages: 1024, bytes: 512 * 1024 }

interface Job {
  readonly run: () => TopicValidatorResult
  readonly done: (result: TopicValidatorResult) => void
}

/**
 * One lane of a topic: each sender's messages oldest first, the senders served in turn. Reading
 * ahead (`READ_AHEAD`) puts up to thousands of one sender's messages in a lane at once; one FIFO
 * then made every other sender's message wait behind them all (a typed reading relayed by an honest
 * peer waited behind a spammer's queued thousands and missed the next block).
 */
export class Lane<T> {
  private readonly bySender = new Map<string, Fifo<T>>()
  private size = 0

  get length(): number {
    return this.size
  }

  push(sender: string, x: T): void {
    let q = this.bySender.get(sender)
    if (q === undefined) {
      q = new Fifo()
      this.bySender.set(sender, q)
    }
    q.push(x)
    this.size++
  }

  /** The oldest message of the sender whose turn it is; that sender then goes last. */
  shift(): T | undefined {
    for (const [sender, q] of this.bySender) {
      const x = q.shift()
      this.bySender.delete(sender)
      if (x === undefined) continue
      if (q.length > 0) this.bySender.set(sender, q)
      this.size--
      return x
    }
    return undefined
  }

  /** The oldest message of the sender with the most waiting (what a full lane gives up). */
  shiftLongest(): T | undefined {
    let longest: Fifo<T> | undefined
    for (const q of this.bySender.values()) if (longest === undefined || q.length > longest.length) longest = q
    const x = longest?.shift()
    if (x !== undefined) this.size--
    return x
  }
}

export interface GossipQueueOptions {
  readonly max?: Partial<Record<Topic, number>>
  readonly turnMs?: number
  /** The clock turns are measured with (tests inject one). */
  readonly now?: () => number
  readonly readAhead?: { messages: number; bytes: number }
}

/** One peer's messages waiting for validation, and its stream reader waiting for room. */
interface Backlog {
  messages: number
  bytes: number
  /** Stream readers waiting for room (one per stream): each woken when fewer than `below` wait. */
  readonly readers: { readonly below: number; readonly wake: () => void }[]
}

export interface QueueStats {
  /** Messages dropped unvalidated because their topic's queue was full. */
  dropped: number
}

/** Who sent a message, and its size (counted against the sender's read-ahead). */
export interface Sender {
  readonly peer: string
  readonly bytes: number
}

export class GossipQueues {
  readonly stats: QueueStats = { dropped: 0 }
  private readonly urgent = new Map<Topic, Lane<Job>>()
  private readonly regular = new Map<Topic, Lane<Job>>()
  private readonly max: Record<Topic, number>
  private readonly turnMs: number
  private readonly now: () => number
  private scheduled = false
  private closed = false
  /** When the current turn began (validations inline count against it too). */
  private since = Number.NEGATIVE_INFINITY
  private readonly readAhead: { messages: number; bytes: number }
  private readonly backlogs = new Map<string, Backlog>()

  constructor(opts: GossipQueueOptions = {}) {
    this.max = { ...GOSSIP_QUEUE_MAX, ...opts.max }
    this.turnMs = opts.turnMs ?? TURN_MS
    this.now = opts.now ?? (() => performance.now())
    this.readAhead = opts.readAhead ?? READ_AHEAD
    for (const t of GOSSIP_PRIORITY) {
      this.urgent.set(t, new Lane())
      this.regular.set(t, new Lane())
    }
  }

  /**
   * Queue one validation; resolves with its result in its turn, or with Ignore if it is dropped
   * (its queue full, or the queues closed). `from`: the peer that sent it and its size: its turn
   * comes round-robin among the senders of its lane, and it counts against that peer's read-ahead
   * until it is done (`room`).
   */
  validate(
    topic: Topic,
    urgent: boolean,
    run: () => TopicValidatorResult,
    from?: Sender,
  ): Promise<TopicValidatorResult> {
    if (from === undefined) return this.enqueue(topic, urgent, run, '')
    this.hold(from.peer, 1, from.bytes)
    return this.enqueue(topic, urgent, run, from.peer).finally(() => this.hold(from.peer, -1, -from.bytes))
  }

  /**
   * Resolves once `peer` has room to read ahead, or at once: fewer than `readAhead` of its
   * messages and bytes waiting, or, when it may not `readAhead` (it has delivered no block), none
   * at all. gossipsub awaits this before it reads the peer's next RPC. (A graylisted peer's RPCs
   * are dropped by gossipsub before they reach a validator: they take no room.)
   */
  async room(peer: string, readAhead = true): Promise<void> {
    const b = this.backlogs.get(peer)
    const below = readAhead ? this.readAhead.messages : 1
    if (b === undefined || this.closed || this.roomIn(b, below)) return
    await new Promise<void>((wake) => {
      b.readers.push({ below, wake })
    })
  }

  /** Messages of one peer waiting now (tests and metrics). */
  backlogOf(peer: string): number {
    return this.backlogs.get(peer)?.messages ?? 0
  }

  private roomIn(b: Backlog, below: number): boolean {
    return b.messages < below && b.bytes < this.readAhead.bytes
  }

  private hold(peer: string, messages: number, bytes: number): void {
    if (this.closed) return
    let b = this.backlogs.get(peer)
    if (b === undefined) {
      b = { messages: 0, bytes: 0, readers: [] }
      this.backlogs.set(peer, b)
    }
    b.messages += messages
    b.bytes += bytes
    for (let i = b.readers.length - 1; i >= 0; i--) {
      const r = b.readers[i]
      if (!this.roomIn(b, r.below)) continue
      b.readers.splice(i, 1)
      r.wake()
    }
    if (b.messages === 0 && b.readers.length === 0) this.backlogs.delete(peer)
  }

  private enqueue(
    topic: Topic,
    urgent: boolean,
    run: () => TopicValidatorResult,
    sender: string,
  ): Promise<TopicValidatorResult> {
    if (this.closed) return Promise.resolve(TopicValidatorResult.Ignore)
    // Nothing waiting and the event loop not held for long: validated at once.
    if (!this.scheduled && this.now() - this.since < this.turnMs) return Promise.resolve(this.runOne(run))
    return new Promise((done) => {
      const lanes = [this.urgent.get(topic) as Lane<Job>, this.regular.get(topic) as Lane<Job>]
      if (lanes[0].length + lanes[1].length >= this.max[topic]) {
        // A regular message of the sender with the most waiting goes; with none, an urgent one for
        // an urgent one, or else this one (urgent messages are never pushed out by regular ones).
        const victim = lanes[1].shiftLongest() ?? (urgent ? lanes[0].shiftLongest() : undefined)
        this.stats.dropped++
        if (victim === undefined) {
          done(TopicValidatorResult.Ignore)
          return
        }
        victim.done(TopicValidatorResult.Ignore)
      }
      lanes[urgent ? 0 : 1].push(sender, { run, done })
      this.schedule()
    })
  }

  /** Drop everything waiting (as Ignore) and refuse what comes next. */
  close(): void {
    this.closed = true
    for (const b of this.backlogs.values()) for (const r of b.readers.splice(0)) r.wake()
    this.backlogs.clear()
    for (const lane of [...this.urgent.values(), ...this.regular.values()]) {
      for (let job = lane.shift(); job !== undefined; job = lane.shift()) job.done(TopicValidatorResult.Ignore)
    }
  }

  private schedule(): void {
    if (this.scheduled || this.closed) return
    this.scheduled = true
    setImmediate(() => this.turn())
  }

  private next(): Job | undefined {
    for (const t of GOSSIP_PRIORITY) {
      const job = (this.urgent.get(t) as Lane<Job>).shift() ?? (this.regular.get(t) as Lane<Job>).shift()
      if (job !== undefined) return job
    }
    return undefined
  }

  private runOne(run: () => TopicValidatorResult): TopicValidatorResult {
    try {
      return run()
    } catch {
      return TopicValidatorResult.Ignore
    }
  }

  private turn(): void {
    this.scheduled = false
    this.since = this.now()
    for (;;) {
      const job = this.next()
      if (job === undefined) return
      job.done(this.runOne(job.run))
      if (this.now() - this.since >= this.turnMs) break
    }
    this.schedule()
  }
}
