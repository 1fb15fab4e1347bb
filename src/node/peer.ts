import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { equalBytes, toHex } from '../core/bytes.js'
import { signerFromLibp2pKey } from '../core/crypto.js'
import type { Verdict } from '../core/errors.js'
import { PosError } from '../core/errors.js'
import { type Network, slotAt, slotStart } from '../core/params.js'
import {
  decodeBlock,
  decodeReading,
  decodeStake,
  encodeReading,
  encodeStake,
  type Reading,
  signatureChecks,
} from '../core/records.js'
import type { Topic } from '../network/names.js'
import { P2P, type P2POptions } from '../network/p2p.js'
import { MAX_BLOCKS_PER_REQUEST, MAX_STATUS_PEERS, type ReqRespServer, type Status } from '../network/reqresp.js'
import { loadOrCreateIdentity } from '../storage/identity.js'
import { Store } from '../storage/store.js'
import { type ChainEvents, ChainService } from './chain-service.js'
import { TypedEmitter } from './events.js'
import { type Logger, silentLogger } from './log.js'
import { VerifyPool } from './verify-pool.js'
import { blockView } from './views.js'

/** Invalid gossip messages from one peer within a window that get it disconnected and refused. */
const MAX_REJECTS = 20
const REJECT_WINDOW_MS = 60_000
/** Range-sync batches at least this long have their signatures checked on worker threads. */
const POOL_MIN_BLOCKS = 16
/** Proposal stagger: at most this many ranks, slotMs/100 each (100 ms at 1 s slots). */
const STAGGER_RANKS = 10
/** Joined peers exchange status with one peer this often (anti-entropy); joining ones more often. */
const STATUS_EVERY_SLOTS = 16
const JOIN_STATUS_EVERY_SLOTS = 4
/** Range-sync batches fetched and verified ahead of the one being imported. */
const SYNC_AHEAD = 3
/** Slots a peer waits, meeting only fresh peers, before the lowest validator id begins the chain. */
const FRESH_START_SLOTS = 5

export interface PeerOptions {
  readonly net: Network
  /** Data dir; undefined keeps the chain and the identity in memory (--ephemeral). */
  readonly dataDir?: string
  readonly stake: number
  readonly host?: string
  readonly port?: number
  readonly bootstrap?: readonly string[]
  readonly mdns?: boolean
  readonly now?: () => number
  readonly log?: Logger
  /** Re-gossip unconfirmed own records every this many slots. */
  readonly regossipSlots?: number
  /** libp2p metrics implementation (see P2POptions.metrics). */
  readonly metrics?: P2POptions['metrics']
}

export interface PeerEvents extends ChainEvents {
  ready: { peerId: string; addrs: string[] }
  'peer:connect': { peerId: string }
  'peer:disconnect': { peerId: string }
  'peer:refused': { peerId: string; reason: string }
  /** A gossip message was refused (counted per topic and code). */
  'gossip:rejected': { topic: Topic; code: string; from: string }
  'sync:progress': { from: string; height: number; target: number }
  /** A reading typed on this peer is safe in the outbox and was gossiped. */
  submitted: { reading: Reading }
}

export interface GossipStats {
  accepted: number
  ignored: number
  rejected: Map<string, number>
}

/**
 * One pos-peer process: storage, identity, chain service, libp2p, the slot clock and sync. Built in
 * order by start(), torn down in reverse by stop() (idempotent).
 */
export class Peer implements ReqRespServer {
  readonly events = new TypedEmitter<PeerEvents>()
  readonly net: Network
  readonly stats: Record<Topic, GossipStats> = {
    candidates: { accepted: 0, ignored: 0, rejected: new Map() },
    stakes: { accepted: 0, ignored: 0, rejected: new Map() },
    readings: { accepted: 0, ignored: 0, rejected: new Map() },
  }
  svc!: ChainService
  p2p!: P2P
  private store!: Store
  private readonly log: Logger
  private readonly now: () => number
  private slotTimer: NodeJS.Timeout | undefined
  private syncing = new Set<string>()
  private fetching = new Set<string>()
  private orphanSource = new Map<string, PeerId>()
  private rejects = new Map<string, { count: number; since: number }>()
  private stopping: Promise<void> | undefined
  /** Signature checks of range-sync batches, on worker threads. */
  private readonly verifyPool = new VerifyPool()
  private closed = false
  /** False until we have caught up with a peer (or have nobody to join). */
  private joined = false
  private startedAt = 0
  private lastJoinWarning = 0
  private startedSlot = 0
  /** Head height and stake each peer reported in its last status (join gate). */
  private readonly peerStatus = new Map<string, { height: number; stake: number }>()

  private constructor(readonly opts: PeerOptions) {
    this.net = opts.net
    this.log = opts.log ?? silentLogger
    this.now = opts.now ?? Date.now
  }

  static async start(opts: PeerOptions): Promise<Peer> {
    const peer = new Peer(opts)
    await peer.startModules()
    return peer
  }

  get peerId(): string {
    return this.p2p.node.peerId.toString()
  }

  get dataDir(): string | undefined {
    return this.opts.dataDir
  }

  private async startModules(): Promise<void> {
    const { opts } = this
    let key: PrivateKey
    if (opts.dataDir === undefined) {
      key = await generateKeyPair('Ed25519')
      this.store = new Store(this.net)
    } else {
      key = await loadOrCreateIdentity(opts.dataDir)
      this.store = new Store(this.net, { path: `${opts.dataDir}/chain` })
    }
    await this.store.open()
    try {
      this.svc = await ChainService.create({
        net: this.net,
        store: this.store,
        signer: signerFromLibp2pKey(key),
        now: this.now,
        stake: opts.stake,
      })
      this.forwardChainEvents()
      this.p2p = await P2P.create({
        net: this.net,
        privateKey: key,
        host: opts.host ?? '127.0.0.1',
        port: opts.port,
        bootstrap: opts.bootstrap ?? [],
        mdns: opts.mdns ?? false,
        handlers: {
          candidates: (from, data) => this.onGossip('candidates', from, data),
          stakes: (from, data) => this.onGossip('stakes', from, data),
          readings: (from, data) => this.onGossip('readings', from, data),
        },
        server: this,
        log: this.log,
        metrics: opts.metrics,
      })
    } catch (err) {
      await this.store.close()
      throw err
    }
    this.p2p.events.on('peer:connect', ({ peerId }) => {
      this.events.emit('peer:connect', { peerId: peerId.toString() })
      void this.exchangeStatus(peerId)
    })
    this.p2p.events.on('peer:disconnect', ({ peerId }) =>
      this.events.emit('peer:disconnect', { peerId: peerId.toString() }),
    )
    this.p2p.events.on('peer:refused', ({ peerId, reason }) => {
      this.log('warn', `refusing peer ${peerId}: ${reason}`)
      this.events.emit('peer:refused', { peerId: peerId.toString(), reason })
    })
    this.svc.events.on('missing-parent', ({ parentHex, childHex }) => void this.fetchParent(parentHex, childHex))
    this.startedSlot = this.svc.currentSlot()
    this.startedAt = this.now()
    this.joined = !this.p2p.hasBootstrap
    this.scheduleSlot()
    this.events.emit('ready', { peerId: this.peerId, addrs: this.p2p.listenAddrs() })
    this.log(
      'info',
      `peer ${this.peerId} listening on ${this.p2p.listenAddrs().join(', ')} (network ${this.net.idHex.slice(0, 16)})`,
    )
  }

  private forwardChainEvents(): void {
    const names: (keyof ChainEvents)[] = ['candidate', 'block', 'head', 'reorg', 'finalized', 'won', 'missing-parent']
    for (const name of names) this.svc.events.on(name, (payload) => this.events.emit(name, payload as never))
  }

  // --- gossip -------------------------------------------------------------------------------

  private onGossip(topic: Topic, from: PeerId, data: Uint8Array): Verdict {
    let verdict: Verdict
    try {
      if (topic === 'candidates') {
        const block = decodeBlock(this.net, data)
        verdict = this.svc.receiveBlock(block)
        if (verdict === 'ignore' && this.svc.orphans.has(block.hashHex)) this.orphanSource.set(block.hashHex, from)
      } else if (topic === 'stakes') {
        verdict = this.svc.receiveStake(decodeStake(data))
      } else {
        verdict = this.svc.receiveReading(decodeReading(data))
      }
    } catch (err) {
      if (!(err instanceof PosError)) {
        this.log('error', `bug: ${topic} message from ${from} threw ${(err as Error).stack ?? String(err)}`)
        return 'ignore'
      }
      verdict = err.action === 'REJECT' ? 'reject' : 'ignore'
      if (verdict === 'reject') {
        const s = this.stats[topic].rejected
        s.set(err.code, (s.get(err.code) ?? 0) + 1)
        this.countReject(from)
        this.events.emit('gossip:rejected', { topic, code: err.code, from: from.toString() })
        this.log('debug', `reject ${topic} from ${from}: ${err.message}`)
        return verdict
      }
    }
    if (verdict === 'accept') this.stats[topic].accepted++
    else if (verdict === 'ignore') this.stats[topic].ignored++
    return verdict
  }

  private publish(topic: Topic, data: Uint8Array): void {
    this.p2p.gossip.publish(topic, data).catch((err: Error) => this.log('debug', `publish ${topic}: ${err.message}`))
  }

  // --- slot clock -----------------------------------------------------------------------------

  private scheduleSlot(): void {
    if (this.closed) return
    const p = this.net.params
    const next = slotAt(p, this.now()) + 1
    const delay = Math.max(0, slotStart(p, next) - this.now())
    this.slotTimer = setTimeout(() => void this.onSlot(next), delay)
  }

  private async onSlot(slot: number): Promise<void> {
    if (this.closed) return
    try {
      if (!this.joined) this.tryToJoin(slot)
      else this.statusInTurn(slot, STATUS_EVERY_SLOTS)
      if (this.joined && this.svc.stake > 0) {
        // Stagger: the likely winner publishes at once, the rest a few ms per rank later, so the
        // candidate that matters most does not queue behind all the others on every peer.
        const wait = Math.min(this.svc.proposalRank(slot), STAGGER_RANKS) * (this.net.params.slotMs / 100)
        if (wait > 0) await new Promise((r) => setTimeout(r, wait))
        if (this.closed) return
      }
      const block = this.joined ? await this.svc.onSlot(slot) : undefined
      if (block !== undefined) this.publish('candidates', block.bytes)
      const every = this.opts.regossipSlots ?? 4
      if ((slot - this.startedSlot) % every === 1 || slot - this.startedSlot === 1) this.regossip()
      this.checkScores()
    } catch (err) {
      this.log('error', `slot ${slot}: ${(err as Error).message}`)
    }
    this.scheduleSlot()
  }

  /**
   * A peer with somewhere to join never proposes before it has caught up with a peer: a chain
   * started alone finalizes alone and could never merge with the network it was pointed at.
   */
  private tryToJoin(slot: number): void {
    this.statusInTurn(slot, JOIN_STATUS_EVERY_SLOTS)
    if (this.mayBeginFreshNetwork(slot, this.p2p.connectedPeers())) {
      this.joined = true
      this.log('info', 'no peer has a chain yet: beginning the network (lowest validator id among fresh peers)')
      return
    }
    if (this.now() - this.lastJoinWarning > 15_000 && this.now() - this.startedAt > 10_000) {
      this.lastJoinWarning = this.now()
      this.log(
        'warn',
        'waiting to reach a peer of this network before proposing (start without --bootstrap, on a free port 9090, to begin a new network)',
      )
    }
  }

  /**
   * Fresh peers that all bootstrap to each other (a docker-compose network) would wait for a chain
   * forever. After a few slots in which every connected peer reported an empty chain, the validator
   * with the lowest peer id among them (the stake is in the status) begins; the others join its
   * chain like any other.
   */
  private mayBeginFreshNetwork(slot: number, peers: PeerId[]): boolean {
    if (this.svc.chain.head.height > 0 || this.svc.stake === 0 || peers.length === 0) return false
    if (slot - this.startedSlot < FRESH_START_SLOTS) return false
    const fresh = peers.map((p) => ({ id: p.toString(), status: this.peerStatus.get(p.toString()) }))
    if (!fresh.every((p) => p.status?.height === 0)) return false
    return fresh.every((p) => (p.status?.stake ?? 0) === 0 || this.peerId < p.id)
  }

  /**
   * Exchange status with one connected peer (each in turn) every `every` slots, unless a sync
   * runs. While joining, to find a chain; once joined, anti-entropy: gossip and parent fetches
   * normally keep us current, this catches what they miss (a connection that stayed up through a
   * network cut sends no new status).
   */
  private statusInTurn(slot: number, every: number): void {
    if (slot % every !== 0 || this.syncing.size > 0) return
    const peers = this.p2p.connectedPeers()
    if (peers.length > 0) void this.exchangeStatus(peers[Math.floor(slot / every) % peers.length])
  }

  private regossip(): void {
    const { readings, stakes } = this.svc.unconfirmed()
    for (const r of readings) this.publish('readings', encodeReading(r))
    for (const s of stakes) this.publish('stakes', encodeStake(s))
  }

  /**
   * A peer that keeps sending invalid messages is disconnected and refused for a while: counted
   * by us (rejections per minute), not by its overall gossip score, because a slow but honest
   * peer also loses score (broken IWANT promises under load) and must not be cut off for it.
   * gossipsub itself graylists a peer whose score falls (invalid deliveries weigh most).
   */
  private checkScores(): void {
    const now = Date.now()
    for (const [key, r] of this.rejects) {
      if (now - r.since > REJECT_WINDOW_MS) this.rejects.delete(key)
    }
    for (const peer of this.p2p.connectedPeers()) {
      const r = this.rejects.get(peer.toString())
      if (r !== undefined && r.count >= MAX_REJECTS) {
        this.p2p.refuse(peer, `sent ${r.count} invalid messages in ${Math.round((now - r.since) / 1000)} s`)
        this.rejects.delete(peer.toString())
      }
    }
  }

  private countReject(from: PeerId): void {
    const key = from.toString()
    const r = this.rejects.get(key) ?? { count: 0, since: Date.now() }
    r.count++
    if (this.rejects.size > 10_000) this.rejects.clear()
    this.rejects.set(key, r)
  }

  // --- user input -----------------------------------------------------------------------------

  async submitReading(bpm: number): Promise<Reading> {
    const r = await this.svc.submitReading(bpm)
    this.publish('readings', encodeReading(r))
    this.events.emit('submitted', { reading: r })
    return r
  }

  async setStake(stake: number): Promise<void> {
    const s = await this.svc.announceStake(stake)
    this.publish('stakes', encodeStake(s))
  }

  // --- req/resp server --------------------------------------------------------------------------

  status(): Status {
    const root = this.svc.chain.root
    const head = this.svc.chain.head
    return {
      networkId: this.net.id,
      headHash: head.hash,
      headHeight: head.height,
      finalizedHash: root.hash,
      finalizedHeight: root.height,
      peers: this.p2p.peerAddrs(MAX_STATUS_PEERS),
      stake: this.svc.stake,
    }
  }

  onStatus(peer: PeerId, status: Status): boolean {
    if (!equalBytes(status.networkId, this.net.id)) {
      this.p2p.refuse(
        peer,
        `it is on network ${toHex(status.networkId).slice(0, 16)}, we are on ${this.net.idHex.slice(0, 16)} (check --network and --slot-ms)`,
      )
      return false
    }
    // Peer exchange: dial the peers it is connected to (backs up pubsub peer discovery).
    this.p2p.dialKnown(status.peers)
    // Range-sync when it has final blocks we lack, or is more than one block ahead (one block is
    // just this slot's candidate on its way: gossip brings it).
    const head = this.svc.chain.head
    if (status.headHeight > head.height + 1 || status.finalizedHeight > this.svc.chain.root.height)
      void this.syncFrom(peer, status)
    return true
  }

  async blocksByRange(from: number, count: number): Promise<Uint8Array[]> {
    const root = this.svc.chain.root
    const out: Uint8Array[] = []
    if (from <= root.height)
      out.push(
        ...(await this.store.finalBlocksFrom(Math.max(1, from), Math.min(count, root.height - Math.max(1, from) + 1))),
      )
    for (const n of this.svc.chain.chainTo()) {
      if (out.length >= count) break
      if (n.height >= from && n.block !== undefined) out.push(n.block.bytes)
    }
    return out
  }

  async blocksByHash(hashes: Uint8Array[]): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for (const h of hashes) {
      const hex = toHex(h)
      const b = this.svc.chain.get(hex)?.block ?? (await this.store.blockByHash(hex))
      if (b !== undefined) out.push(b.bytes)
    }
    return out
  }

  // --- sync -------------------------------------------------------------------------------------

  private async exchangeStatus(peer: PeerId): Promise<void> {
    try {
      const status = await this.p2p.reqresp.status(peer)
      if (!this.onStatus(peer, status)) return
      if (this.peerStatus.size > 10_000) this.peerStatus.clear()
      this.peerStatus.set(peer.toString(), { height: status.headHeight, stake: status.stake })
      if (status.finalizedHeight <= this.svc.chain.root.height) {
        const ours =
          status.finalizedHeight === 0 ? this.net.idHex : await this.store.finalHashAt(status.finalizedHeight)
        if (ours !== undefined && ours !== toHex(status.finalizedHash)) {
          this.p2p.refuse(
            peer,
            `its finalized block at height ${status.finalizedHeight} conflicts with ours (one of the two chains was started alone)`,
          )
          return
        }
      }
      // Two fresh peers meeting each other have nothing to join: wait for a peer with a chain,
      // or two lone chains would each finalize by themselves and never merge.
      const someChain = status.headHeight > 0 || this.svc.chain.head.height > 0
      if (!this.syncing.has(peer.toString()) && someChain) this.joined = true
    } catch (err) {
      this.log('debug', `status with ${peer} failed: ${(err as Error).message}`)
    }
  }

  /**
   * Range sync from one peer until we hold its head (bounded by its status and a round count). The
   * signatures of each 64-block batch are checked on worker threads while the previous batch is
   * imported. A failed request (e.g. the peer's rate limit) is retried twice, a
   * second apart.
   */
  private async syncFrom(peer: PeerId, status: Status): Promise<void> {
    const key = peer.toString()
    if (this.syncing.has(key) || this.stopping !== undefined) return
    this.syncing.add(key)
    let caughtUp = false
    const fetchRange = async (from: number): Promise<Uint8Array[]> => {
      for (let attempt = 0; ; attempt++) {
        try {
          return await this.p2p.reqresp.blocksByRange(peer, from, MAX_BLOCKS_PER_REQUEST)
        } catch (err) {
          if (attempt >= 2 || this.stopping !== undefined) throw err
          await new Promise((r) => setTimeout(r, 1000))
        }
      }
    }
    // Fetch and verify (on worker threads) the next batch while this one is imported.
    const prepare = async (from: number) => {
      const blocks = (await fetchRange(from)).map((bytes) => decodeBlock(this.net, bytes))
      // A few blocks (catching up a slot or two) are cheaper to check inline than to ship to threads.
      if (blocks.length >= POOL_MIN_BLOCKS)
        await this.verifyPool.verifyAndRemember(blocks.flatMap((b) => signatureChecks(this.net, b)))
      return blocks
    }
    // Up to SYNC_AHEAD batches requested and being verified while one is imported.
    const ahead: { from: number; blocks: ReturnType<typeof prepare> }[] = []
    let requested = this.svc.chain.root.height + 1
    const fill = () => {
      while (ahead.length < SYNC_AHEAD && requested <= status.headHeight) {
        const blocks = prepare(requested)
        blocks.catch(() => {}) // awaited below; a batch left over when we stop must not be unhandled
        ahead.push({ from: requested, blocks })
        requested += MAX_BLOCKS_PER_REQUEST
      }
    }
    try {
      fill()
      for (let round = 0; round < 100_000 && ahead.length > 0; round++) {
        const batch = ahead.shift() as (typeof ahead)[number]
        const blocks = await batch.blocks
        if (blocks.length === 0) break
        if (blocks.length < MAX_BLOCKS_PER_REQUEST) {
          // A short answer: the requests beyond it are void; go on from its end if the peer's
          // chain goes further (and only forwards).
          const end = (blocks.at(-1) as (typeof blocks)[number]).height
          if (end < batch.from) break
          ahead.length = 0
          requested = end + 1
        }
        fill()
        for (const block of blocks) {
          const root = this.svc.chain.root
          if (block.height === root.height + 1 && !equalBytes(block.parent, root.hash)) {
            this.p2p.refuse(peer, `its chain conflicts with our finalized block at height ${root.height}`)
            return
          }
          this.svc.receiveBlock(block)
        }
        this.events.emit('sync:progress', { from: key, height: this.svc.chain.head.height, target: status.headHeight })
        // let gossip and slot timers run between batches
        await new Promise((r) => setImmediate(r))
        if (this.stopping !== undefined) break
      }
      caughtUp = true
    } catch (err) {
      if (err instanceof PosError && err.action === 'REJECT')
        this.p2p.refuse(peer, `sent an invalid block during sync: ${err.message}`)
      else this.log('debug', `sync from ${peer} stopped: ${(err as Error).message}`)
    } finally {
      this.syncing.delete(key)
      if (caughtUp) this.joined = true
      // The verify threads are for catching up; an idle peer does not keep them (about 10 MB each).
      if (this.syncing.size === 0) await this.verifyPool.close()
    }
  }

  /** Fetch an unknown parent by hash from the peer that sent the child (or any peer). */
  private async fetchParent(parentHex: string, childHex: string): Promise<void> {
    if (this.fetching.has(parentHex) || this.fetching.size > 64) return
    this.fetching.add(parentHex)
    const source = this.orphanSource.get(childHex)
    this.orphanSource.delete(childHex)
    const peers = [...(source === undefined ? [] : [source]), ...this.p2p.connectedPeers()].slice(0, 4)
    try {
      for (const peer of peers) {
        try {
          const [bytes] = await this.p2p.reqresp.blocksByHash(peer, [Buffer.from(parentHex, 'hex')])
          if (bytes === undefined) continue
          const block = decodeBlock(this.net, bytes)
          this.svc.receiveBlock(block, Buffer.from(parentHex, 'hex'))
          return
        } catch (err) {
          this.log('debug', `blocks-by-hash ${parentHex.slice(0, 12)} from ${peer}: ${(err as Error).message}`)
        }
      }
    } finally {
      this.fetching.delete(parentHex)
    }
  }

  // --- shutdown ---------------------------------------------------------------------------------

  /**
   * Stop. Graceful: announce leave (stake 0) when we have stake and wait up to `leaveSlots` slots
   * for another validator to build on a block holding it (in our head chain alone, a lost gossip
   * message would leave our stake counted until it expires), then close libp2p and storage.
   * Idempotent.
   */
  stop(opts: { graceful?: boolean; leaveSlots?: number } = {}): Promise<void> {
    this.stopping ??= this.doStop(opts.graceful ?? true, opts.leaveSlots ?? 3)
    return this.stopping
  }

  private async doStop(graceful: boolean, leaveSlots: number): Promise<void> {
    const registered = (this.svc.chain.head.state.stakes.get(this.svc.me)?.stake ?? 0) > 0
    if (graceful && registered) {
      await this.setStake(0).catch(() => {})
      const deadline = this.now() + leaveSlots * this.net.params.slotMs + 200
      await new Promise<void>((resolve) => {
        const check = () => {
          if (this.svc.ownStakeSeen() || this.now() >= deadline) return resolve()
          setTimeout(check, 50)
        }
        check()
      })
    }
    this.closed = true
    clearTimeout(this.slotTimer)
    await this.verifyPool.close()
    await this.p2p.stop().catch((err: Error) => this.log('debug', `libp2p stop: ${err.message}`))
    await this.svc.flush()
    await this.store.close()
  }

  /** Up to `count` blocks of the canonical chain (final and not) from height `from`, as views. */
  async canonicalBlocks(from: number, count: number) {
    const root = this.svc.chain.root.height
    const frames = await this.blocksByRange(from, count)
    return frames.map((bytes) => decodeBlock(this.net, bytes)).map((b) => blockView(b, b.height <= root))
  }

  /** The last `count` blocks of the canonical chain (final and not), newest first. */
  async recentBlocks(count: number) {
    const from = Math.max(1, this.svc.chain.head.height - count + 1)
    return (await this.canonicalBlocks(from, count)).reverse()
  }
}
