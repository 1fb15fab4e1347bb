import type { Signer } from '../../src/core/crypto.js'
import { BlockError } from '../../src/core/errors.js'
import { type ChainConfig, slotStart } from '../../src/core/params.js'
import {
  type Block,
  createReading,
  decodeBlock,
  decodeEvidence,
  decodeReading,
  decodeStake,
  type Evidence,
  type Reading,
  type StakeAnnouncement,
} from '../../src/core/records.js'
import type { Topic } from '../../src/network/topics.js'
import { ChainService } from '../../src/node/chain-service.js'
import { SlotLoop } from '../../src/node/slot-loop.js'
import { Store } from '../../src/storage/store.js'
import { silentLogger } from '../../src/util/logger.js'
import { createBlock } from '../helpers/blocks.js'
import { prng } from '../helpers/fixtures.js'

export interface SimOptions {
  readonly net: ChainConfig
  readonly signers: Signer[]
  readonly stakes: number[]
  readonly seed: number
  /** Max delivery delay of a message, ms (uniform in [0, maxDelayMs]). Reordering follows. */
  readonly maxDelayMs: number
  /** Probability that one delivery (one sender, one receiver) is lost. */
  readonly dropRate: number
  /**
   * When set, only this peer proposes on an empty chain; the others wait until they hold a block
   * (the join gate of a real peer). Unset: everyone begins at once.
   */
  readonly founder?: number
  /** Byzantine validators, by peer index, and what they do with their own candidates. */
  readonly byzantine?: ReadonlyMap<number, Byzantine>
}

export interface Byzantine {
  /** Sign a second block in every slot it proposes: one to the even peers, the other to the odd. */
  readonly equivocate?: boolean
  /** Probability that it withholds a candidate (publishes nothing that slot). */
  readonly withholdRate?: number
  /** Probability that it publishes late, and by how many slots. */
  readonly lateRate?: number
  readonly lateSlots?: number
}

type Message =
  | { kind: 'block'; block: Block }
  | { kind: 'reading'; reading: Reading }
  | { kind: 'stake'; stake: StakeAnnouncement }
  | { kind: 'evidence'; evidence: Evidence }

interface Event {
  readonly at: number
  readonly seq: number
  readonly run: () => Promise<void>
}

/**
 * An in-memory network of ChainServices (the real peer logic, memory stores) on a virtual clock,
 * with random delivery delays, reordering and drops. No sockets, no sleeps: deterministic per seed.
 */
export class Simulator {
  readonly peers: ChainService[] = []
  /** Each peer's slot loop: the same code that drives a real peer, ticked on the virtual clock. */
  private readonly loops: SlotLoop[] = []
  readonly submitted: string[] = []
  /** The blocks each peer announced as canonical (`block` events), by hash. */
  readonly announced: Set<string>[] = []
  readonly rejected: BlockError[] = []
  private readonly rand: () => number
  private readonly queue: Event[] = []
  private seq = 0
  private time: number
  dropRate: number
  /** Max delivery delay, ms (changeable: a run can calm down). */
  maxDelayMs: number
  /** When set, deliveries between these two groups are dropped (a partition). */
  partition: ((from: number, to: number) => boolean) | undefined

  private constructor(private readonly opts: SimOptions) {
    this.rand = prng(opts.seed)
    this.time = slotStart(opts.net.params, 1)
    this.dropRate = opts.dropRate
    this.maxDelayMs = opts.maxDelayMs
  }

  static async create(opts: SimOptions): Promise<Simulator> {
    const sim = new Simulator(opts)
    for (let i = 0; i < opts.signers.length; i++) {
      const store = new Store(opts.net, {})
      await store.open()
      const peer = await ChainService.create({
        net: opts.net,
        store,
        signer: opts.signers[i],
        now: () => sim.time,
        stake: opts.stakes[i],
      })
      peer.events.on('missing-parent', ({ parentHex }) => sim.fetchParent(i, parentHex))
      peer.events.on('evidence', ({ evidence }) => sim.broadcast(i, { kind: 'evidence', evidence }))
      const announced = new Set<string>()
      peer.events.on('block', ({ node }) => announced.add(node.hashHex))
      sim.announced.push(announced)
      sim.peers.push(peer)
      sim.loops.push(
        new SlotLoop({
          config: opts.net,
          chain: peer,
          now: () => sim.time,
          // No stagger in the simulation: every peer proposes at the slot start.
          sleep: async () => {},
          publish: (topic, data) => sim.publishFrom(i, topic, data),
          joined: () => opts.founder === undefined || i === opts.founder || peer.chain.head.height > 0,
          log: process.env.SIM_LOG ? (level, msg) => console.log(`peer${i} ${level} ${msg}`) : silentLogger,
        }),
      )
    }
    return sim
  }

  get now(): number {
    return this.time
  }

  private at(at: number, run: () => Promise<void>): void {
    this.queue.push({ at, seq: this.seq++, run })
  }

  /** Byzantine twins made so far (they are valid blocks: same parent, slot, source and reveal). */
  readonly twins: Block[] = []

  /** What a peer publishes: honest peers broadcast; a Byzantine one may withhold, delay or equivocate. */
  private publishFrom(i: number, topic: Topic, data: Uint8Array): void {
    const byz = this.opts.byzantine?.get(i)
    const msg = this.message(topic, data)
    if (byz === undefined || msg.kind !== 'block') {
      this.broadcast(i, msg)
      return
    }
    if (this.rand() < (byz.withholdRate ?? 0)) return
    const late = this.rand() < (byz.lateRate ?? 0) ? (byz.lateSlots ?? 1) * this.opts.net.params.slotMs : 0
    if (byz.equivocate !== true) {
      this.broadcast(i, msg, late)
      return
    }
    const b = msg.block
    const signer = this.opts.signers[i]
    const twin = createBlock(this.opts.net, signer, {
      height: b.height,
      slot: b.slot,
      parent: b.parent,
      source: b.source,
      reveal: b.reveal,
      votes: b.votes,
      evidence: b.evidence,
      stakes: [],
      readings: [createReading(this.opts.net, signer, 20 + (b.slot % 200), slotStart(this.opts.net.params, b.slot))],
    })
    this.twins.push(twin)
    for (let to = 0; to < this.peers.length; to++) {
      if (to === i) continue
      this.sendTo(i, to, to % 2 === 0 ? msg : { kind: 'block', block: twin }, late)
    }
  }

  /** A published message as it travels (blocks stay bytes until delivery, as on the wire). */
  private message(topic: Topic, data: Uint8Array): Message {
    if (topic === 'candidates') return { kind: 'block', block: decodeBlock(this.opts.net, data) }
    if (topic === 'readings') return { kind: 'reading', reading: decodeReading(data) }
    if (topic === 'evidence') return { kind: 'evidence', evidence: decodeEvidence(data) }
    return { kind: 'stake', stake: decodeStake(data) }
  }

  broadcast(from: number, msg: Message, extraDelayMs = 0): void {
    for (let to = 0; to < this.peers.length; to++) if (to !== from) this.sendTo(from, to, msg, extraDelayMs)
  }

  private sendTo(from: number, to: number, msg: Message, extraDelayMs = 0): void {
    if (this.partition?.(from, to) === true) return
    if (this.rand() < this.dropRate) return
    this.at(this.time + extraDelayMs + Math.floor(this.rand() * this.maxDelayMs), () => this.deliver(to, msg))
  }

  private async deliver(to: number, msg: Message): Promise<void> {
    const peer = this.peers[to]
    try {
      if (msg.kind === 'block') {
        // Blocks travel as bytes, as on the wire.
        if (peer.receiveBlock(decodeBlock(this.opts.net, msg.block.bytes)) === 'accept') this.broadcastRelay(to, msg)
      } else if (msg.kind === 'reading') {
        peer.receiveReading(msg.reading)
      } else if (msg.kind === 'evidence') {
        peer.receiveEvidence(msg.evidence)
      } else {
        peer.receiveStake(msg.stake)
      }
    } catch (err) {
      if (err instanceof BlockError) this.rejected.push(err)
      else throw err
    }
  }

  /** Gossip relays accepted blocks once (the network dedupes by message id). */
  private readonly relayed = new Set<string>()
  private broadcastRelay(from: number, msg: Message & { kind: 'block' }): void {
    const key = `${from}/${msg.block.hashHex}`
    if (this.relayed.has(key)) return
    this.relayed.add(key)
    this.broadcast(from, msg)
  }

  /** Blocks-by-hash: ask a random peer that has the block. */
  /**
   * Blocks-by-hash: ask the reachable peers in a random order until one has it, from its tree or
   * its store (final blocks too), as a real peer's unknown-parent fetch does with its retries.
   */
  private fetchParent(to: number, parentHex: string): void {
    const reachable = this.peers
      .map((p, i) => ({ p, i }))
      .filter(({ i }) => i !== to && this.partition?.(i, to) !== true)
    const order = reachable.map((r) => ({ r, k: this.rand() })).sort((a, b) => a.k - b.k)
    this.at(this.time + Math.floor(this.rand() * this.maxDelayMs), async () => {
      for (const { r } of order) {
        const block = await r.p.blockByHash(parentHex)
        if (block === undefined) continue
        try {
          this.peers[to].receiveBlock(block, { expectedHash: block.hash })
        } catch (err) {
          if (err instanceof BlockError) this.rejected.push(err)
          else throw err
        }
        return
      }
    })
  }

  async submitReading(peer: number, bpm: number): Promise<void> {
    const r = await this.peers[peer].submitReading(bpm)
    this.submitted.push(r.idHex)
    this.broadcast(peer, { kind: 'reading', reading: r })
  }

  /** Run slots [from, to): each peer's slot loop (propose, re-gossip), `perSlot` hook for input. */
  async runSlots(from: number, to: number, perSlot?: (slot: number) => Promise<void>): Promise<void> {
    const p = this.opts.net.params
    for (let slot = from; slot < to; slot++) {
      const start = slotStart(p, slot)
      this.at(start, async () => {
        for (const loop of this.loops) await loop.tick(slot)
      })
      if (perSlot !== undefined) this.at(start + Math.floor(p.slotMs / 3), () => perSlot(slot))
      await this.drainUntil(start + p.slotMs)
      // Let the event loop breathe once a slot: the run is otherwise one long chain of microtasks,
      // and the test runner's own messages (its worker RPC) time out behind it.
      await new Promise((resolve) => setImmediate(resolve))
    }
  }

  private async drainUntil(until: number): Promise<void> {
    for (;;) {
      this.queue.sort((a, b) => a.at - b.at || a.seq - b.seq)
      const next = this.queue[0]
      if (next === undefined || next.at >= until) break
      this.queue.shift()
      this.time = Math.max(this.time, next.at)
      await next.run()
    }
    this.time = until
  }

  /** Final chain of a peer as blocks, from its store. */
  async finalChain(peer: number): Promise<Block[]> {
    const svc = this.peers[peer]
    await svc.flush()
    const bytes = await svc.canonicalBlocks(1, svc.root().height)
    return bytes.map((b) => decodeBlock(this.opts.net, b))
  }
}
