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
 *   before the others, each lane oldest first;
 * - a peer's next RPC is read only once its last one is validated, so a peer that sends faster
 *   than we validate is slowed down by TCP and its backlog stays on its side; a full queue (a
 *   safety bound) drops its oldest message unvalidated, as gossip IGNORE.
 */

/** Validation order: a block unlocks everything after it; readings are the cheapest to lose. */
export const GOSSIP_PRIORITY: readonly Topic[] = ['candidates', 'evidence', 'stakes', 'transfers', 'readings']

/**
 * Messages waiting per topic (both lanes together); past it the oldest regular one goes. A safety
 * bound: gossipsub reads a peer's next RPC only once its last one is validated (network/gossip.ts,
 * `awaitRpcHandler`), so a queue holds at most one RPC (up to 256 messages) per connected peer.
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

interface Job {
  readonly run: () => TopicValidatorResult
  readonly done: (result: TopicValidatorResult) => void
}

export interface GossipQueueOptions {
  readonly max?: Partial<Record<Topic, number>>
  readonly turnMs?: number
  /** The clock turns are measured with (tests inject one). */
  readonly now?: () => number
}

export interface QueueStats {
  /** Messages dropped unvalidated because their topic's queue was full. */
  dropped: number
}

export class GossipQueues {
  readonly stats: QueueStats = { dropped: 0 }
  private readonly urgent = new Map<Topic, Fifo<Job>>()
  private readonly regular = new Map<Topic, Fifo<Job>>()
  private readonly max: Record<Topic, number>
  private readonly turnMs: number
  private readonly now: () => number
  private scheduled = false
  private closed = false
  /** When the current turn began (validations inline count against it too). */
  private since = Number.NEGATIVE_INFINITY

  constructor(opts: GossipQueueOptions = {}) {
    this.max = { ...GOSSIP_QUEUE_MAX, ...opts.max }
    this.turnMs = opts.turnMs ?? TURN_MS
    this.now = opts.now ?? (() => performance.now())
    for (const t of GOSSIP_PRIORITY) {
      this.urgent.set(t, new Fifo())
      this.regular.set(t, new Fifo())
    }
  }

  /**
   * Queue one validation; resolves with its result in its turn, or with Ignore if it is dropped
   * (its queue full of older regular messages, or the queues closed).
   */
  validate(topic: Topic, urgent: boolean, run: () => TopicValidatorResult): Promise<TopicValidatorResult> {
    if (this.closed) return Promise.resolve(TopicValidatorResult.Ignore)
    // Nothing waiting and the event loop not held for long: validated at once.
    if (!this.scheduled && this.now() - this.since < this.turnMs) return Promise.resolve(this.runOne(run))
    return new Promise((done) => {
      const lanes = [this.urgent.get(topic) as Fifo<Job>, this.regular.get(topic) as Fifo<Job>]
      if (lanes[0].length + lanes[1].length >= this.max[topic]) {
        // The oldest regular message goes; with none, the oldest urgent one for an urgent one, or
        // else this one (urgent messages are never pushed out by regular ones).
        const victim = lanes[1].shift() ?? (urgent ? lanes[0].shift() : undefined)
        this.stats.dropped++
        if (victim === undefined) {
          done(TopicValidatorResult.Ignore)
          return
        }
        victim.done(TopicValidatorResult.Ignore)
      }
      lanes[urgent ? 0 : 1].push({ run, done })
      this.schedule()
    })
  }

  /** Drop everything waiting (as Ignore) and refuse what comes next. */
  close(): void {
    this.closed = true
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
      const job = (this.urgent.get(t) as Fifo<Job>).shift() ?? (this.regular.get(t) as Fifo<Job>).shift()
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
