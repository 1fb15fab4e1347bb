import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import type { BlockNode, Chain, TrustedCheckpoint } from '../core/chain.js'
import { publicKeyOfAddress, signerFromLibp2pKey } from '../core/crypto.js'
import type { ChainConfig } from '../core/params.js'
import {
  decodeBlock,
  encodeReading,
  encodeStake,
  encodeTransfer,
  type Reading,
  type Transfer,
} from '../core/records.js'
import type { GossipStats } from '../network/gossip.js'
import { type ConnectionInfo, P2P, type P2POptions } from '../network/p2p.js'
import type { Topic } from '../network/topics.js'
import { loadOrCreateIdentity } from '../storage/identity.js'
import { Store } from '../storage/store.js'
import type { SyncNetwork } from '../sync/interfaces.js'
import { RangeSync } from '../sync/range-sync.js'
import { StatusSync } from '../sync/status.js'
import { UnknownParentSync } from '../sync/unknown-parent.js'
import { TypedEmitter } from '../util/emitter.js'
import { type Logger, silentLogger } from '../util/logger.js'
import { type ChainEvents, ChainService } from './chain-service.js'
import { ClockMonitor } from './clock-monitor.js'
import { type GossipHandlerWrapper, gossipHandlers, urgentGossip, wrapHandlers } from './gossip-handlers.js'
import { reqrespHandlers } from './reqresp-handlers.js'
import { SlotLoop } from './slot-loop.js'
import {
  type AccountRow,
  accountRows,
  type BlockView,
  blockViewOn,
  type NodeView,
  type ValidatorRow,
  validatorRows,
} from './views.js'

export interface PeerOptions {
  readonly net: ChainConfig
  /** Data dir; undefined keeps the chain and the identity in memory (--ephemeral). */
  readonly dataDir?: string
  readonly stake: number
  readonly host?: string
  readonly port?: number
  readonly bootstrap?: readonly string[]
  readonly mdns?: boolean
  readonly now?: () => number
  readonly log?: Logger
  /** Test seam: the default port (9090), so a test does not depend on this machine's 9090. */
  readonly defaultPort?: number
  /** libp2p's own loggers mapped into ours (--log-level debug). */
  readonly libp2pLogger?: P2POptions['libp2pLogger']
  /** Re-gossip unconfirmed own records every this many slots. */
  readonly regossipSlots?: number
  /** libp2p metrics implementation (see P2POptions.metrics). */
  readonly metrics?: P2POptions['metrics']
  /** --checkpoint: a final block (height and hash) no chain we accept may contradict. */
  readonly checkpoint?: TrustedCheckpoint
  /** Test seam: wrap the gossip handlers (e.g. drop every candidate). */
  readonly wrapGossip?: GossipHandlerWrapper
  /**
   * Called with the peer before it starts anything, so a caller hears its events from the first
   * one (a block synced at start, the first connection) rather than from when `start` returns.
   */
  readonly onCreated?: (peer: Peer) => void
}

export interface PeerEvents extends ChainEvents {
  'peer:connect': { peerId: string }
  'peer:disconnect': { peerId: string }
  'peer:refused': { peerId: string; reason: string }
  /** A gossip message was refused (counted per topic and code). */
  'gossip:rejected': { topic: Topic; code: string; from: string }
  'sync:progress': { from: string; height: number; target: number }
  /** A reading typed on this peer is safe in the outbox and was gossiped. */
  submitted: { reading: Reading }
  /** Something the user should know and act on (e.g. the local clock looks off). */
  warning: { message: string }
  /** A transfer sent from this peer (waiting for a block). */
  transfer: { transfer: Transfer }
}

/** How a stop went: no stake to take back, the leave seen built on by another validator, or not in time. */
export interface StopResult {
  readonly leave: 'none' | 'seen' | 'timeout'
}

/** Sleep that a stopping peer does not wait for. */
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms).unref())

/**
 * One pos-peer process: storage, identity, chain service, libp2p, sync and the slot loop, built in
 * order by start() and torn down in reverse by stop() (idempotent). Everything outside reads it
 * through the named methods below (NodeView and friends). (Over 300 lines, one concern: wiring
 * the parts, and the one face they show.)
 */
export class Peer implements NodeView {
  readonly events = new TypedEmitter<PeerEvents>()
  readonly config: ChainConfig
  private svc!: ChainService
  private p2p!: P2P
  private store!: Store
  private slots!: SlotLoop
  private rangeSync!: RangeSync
  private statusSync!: StatusSync
  private parents!: UnknownParentSync
  private readonly log: Logger
  private readonly now: () => number
  private stopping: Promise<StopResult> | undefined

  private constructor(readonly opts: PeerOptions) {
    this.config = opts.net
    this.log = opts.log ?? silentLogger
    this.now = opts.now ?? Date.now
  }

  static async start(opts: PeerOptions): Promise<Peer> {
    const peer = new Peer(opts)
    opts.onCreated?.(peer)
    await peer.startModules()
    return peer
  }

  private async startModules(): Promise<void> {
    const { opts } = this
    let key: PrivateKey
    if (opts.dataDir === undefined) {
      key = await generateKeyPair('Ed25519')
      this.store = new Store(this.config)
    } else {
      key = await loadOrCreateIdentity(opts.dataDir)
      this.store = new Store(this.config, { path: `${opts.dataDir}/chain` })
    }
    await this.store.open()
    try {
      this.svc = await ChainService.create({
        net: this.config,
        store: this.store,
        signer: signerFromLibp2pKey(key),
        now: this.now,
        stake: opts.stake,
        checkpoint: opts.checkpoint,
      })
      this.forwardChainEvents()
      // Sync reaches the network through this face; p2p is created after sync (its handlers need it).
      const network: SyncNetwork = {
        connectedPeers: () => this.p2p.connectedPeers(),
        status: (peer) => this.p2p.reqresp.status(peer),
        blocksByRange: (peer, from, count) => this.p2p.reqresp.blocksByRange(peer, from, count),
        blocksByHash: (peer, hashes) => this.p2p.reqresp.blocksByHash(peer, hashes),
        refuse: (peer, reason) => this.p2p.peers.refuse(peer, reason),
        penalize: (peer) => this.p2p.peers.countReject(peer),
        dialKnown: (addrs) => this.p2p.peers.dialKnown(addrs),
        hasBootstrap: () => this.p2p.peers.hasBootstrap,
        isOnlyDefaultPeer: (peer) => this.p2p.peers.isOnlyDefaultPeer(peer),
      }
      this.rangeSync = new RangeSync({
        chain: this.svc,
        network,
        log: this.log,
        now: this.now,
        onProgress: (p) => this.events.emit('sync:progress', p),
      })
      this.parents = new UnknownParentSync({ chain: this.svc, network, log: this.log })
      this.svc.events.on('missing-parent', ({ parentHex, source }) => this.parents.want(parentHex, source))
      this.statusSync = new StatusSync({
        chain: this.svc,
        network,
        rangeSync: this.rangeSync,
        self: peerIdFromPrivateKey(key).toString(),
        startedSlot: this.svc.currentSlot(),
        now: this.now,
        log: this.log,
        peerAddrs: (max) => this.p2p.peers.peerAddrs(max),
        checkpoint: opts.checkpoint,
        beganAlone: (other) =>
          this.warn(
            `the peer on the default port ${opts.defaultPort ?? 9090} is on another network (${other.slice(0, 16)}): this peer begins network ${this.config.idHex.slice(0, 16)} by itself on ${this.listenAddrs()[0] ?? 'a free port'}; others join it with --bootstrap`,
          ),
      })
      const clock = new ClockMonitor(this.config, this.now, (message) => this.warn(message))
      this.p2p = await P2P.create({
        net: this.config,
        privateKey: key,
        host: opts.host ?? '127.0.0.1',
        port: opts.port,
        bootstrap: opts.bootstrap ?? [],
        mdns: opts.mdns ?? false,
        gossipHandlers: wrapHandlers(gossipHandlers(this.svc, clock), opts.wrapGossip),
        gossipUrgent: urgentGossip(this.svc),
        reqrespHandlers: reqrespHandlers(this.svc, this.statusSync),
        localStatus: () => this.statusSync.localStatus(),
        log: this.log,
        metrics: opts.metrics,
        libp2pLogger: opts.libp2pLogger,
        defaultPort: opts.defaultPort,
      })
      this.statusSync.begin()
    } catch (err) {
      await this.store.close()
      throw err
    }
    this.forwardNetworkEvents()
    this.slots = new SlotLoop({
      config: this.config,
      chain: this.svc,
      now: this.now,
      sleep,
      publish: (topic, data, again) => this.publish(topic, data, again),
      joined: () => this.statusSync.joined,
      beforeSlot: (slot) => this.statusSync.onSlot(slot),
      regossipSlots: opts.regossipSlots,
      log: this.log,
    })
    this.slots.start()
    this.log(
      'info',
      `peer ${this.peerId} listening on ${this.listenAddrs().join(', ')} (network ${this.config.idHex.slice(0, 16)})`,
    )
  }

  private forwardChainEvents(): void {
    const names: (keyof ChainEvents)[] = [
      'candidate',
      'block',
      'head',
      'reorg',
      'finalized',
      'won',
      'missing-parent',
      'evidence',
      'slashed',
      'protected',
    ]
    this.svc.events.on('warning', ({ message }) => this.warn(message))
    for (const name of names) this.svc.events.on(name, (payload) => this.events.emit(name, payload as never))
    // Evidence we found or received goes to every peer: their fork choice drops the offender's votes.
    this.svc.events.on('evidence', ({ evidence }) => this.publish('evidence', evidence.bytes))
    this.svc.events.on('expired', ({ message }) => this.warn(message))
    this.svc.events.on('protected', ({ slot, sourceEpoch }) =>
      this.log(
        'warn',
        `slashing protection: not signing a block for slot ${slot} (source epoch ${sourceEpoch}): this key signed that slot or a later source before (a restart, or the same key elsewhere); waiting for this peer's view to catch up`,
      ),
    )
  }

  private forwardNetworkEvents(): void {
    this.p2p.events.on('peer:connect', ({ peerId }) => {
      this.events.emit('peer:connect', { peerId: peerId.toString() })
      void this.statusSync.exchange(peerId)
    })
    this.p2p.events.on('peer:disconnect', ({ peerId }) =>
      this.events.emit('peer:disconnect', { peerId: peerId.toString() }),
    )
    this.p2p.events.on('peer:refused', ({ peerId, reason }) => {
      this.log('warn', `refusing peer ${peerId}: ${reason}`)
      this.events.emit('peer:refused', { peerId: peerId.toString(), reason })
    })
    this.p2p.events.on('gossip:rejected', ({ peerId, topic, code }) =>
      this.events.emit('gossip:rejected', { topic, code, from: peerId.toString() }),
    )
  }

  private publish(topic: Topic, data: Uint8Array, again = false): void {
    this.p2p.publish(topic, data, again).catch((err: Error) => this.log('debug', `publish ${topic}: ${err.message}`))
  }

  // --- what the CLI, the API, metrics and tests read -------------------------------------------

  get peerId(): string {
    return this.p2p.peerId.toString()
  }

  /** Caught up: joined the network (or began it) and not range-syncing from anyone now. */
  synced(): boolean {
    return this.statusSync.joined && !this.rangeSync.active
  }

  get dataDir(): string | undefined {
    return this.opts.dataDir
  }

  /** The stake this peer runs with (0: observer). */
  get stake(): number {
    return this.svc.stake
  }

  /** This peer's public key, hex (its key in the stake table). */
  get publicKeyHex(): string {
    return this.svc.me
  }

  head(): BlockNode {
    return this.svc.chain.head
  }

  finalized(): BlockNode {
    return this.svc.chain.root
  }

  currentSlot(): number {
    return this.svc.currentSlot()
  }

  /** The block tree, read-only: fork choice state for diagnostics and tests. */
  get chain(): Omit<Chain, 'import'> {
    return this.svc.chain
  }

  /** True once the reading is in a final block. */
  isFinal(readingId: string): boolean {
    return this.svc.chain.finalReadings.has(readingId)
  }

  /** Pending records (mempool) and held orphans: sizes, for diagnostics. */
  pools(): { mempool: number; orphans: number; wantedParents: number } {
    return { mempool: this.svc.mempool.size, orphans: this.svc.orphans.size, wantedParents: this.parents.size }
  }

  validators(): ValidatorRow[] {
    return validatorRows(this)
  }

  connectedPeers(): string[] {
    return this.p2p.connectedPeers().map(String)
  }

  connections(): ConnectionInfo[] {
    return this.p2p.connections()
  }

  listenAddrs(): string[] {
    return this.p2p.listenAddrs()
  }

  /** Gossip messages received per topic: accepted, ignored, rejected by code. */
  gossipStats(): Readonly<Record<Topic, GossipStats>> {
    return this.p2p.gossip.stats
  }

  /** The libp2p side, for tests and diagnostics that need it (gossip health, refusing a peer). */
  /** Something the user should know: logged at warn and emitted (terminal, --json, dashboard). */
  private warn(message: string): void {
    this.log('warn', message)
    this.events.emit('warning', { message })
  }

  get network(): P2P {
    return this.p2p
  }

  /** Up to `count` blocks of the canonical chain (final and not) from height `from`, as views. */
  async canonicalBlocks(from: number, count: number): Promise<BlockView[]> {
    const frames = await this.svc.canonicalBlocks(from, count)
    return frames.map((bytes) => blockViewOn(this, decodeBlock(this.config, bytes)))
  }

  /** The last `count` blocks of the canonical chain (final and not), newest first. */
  async recentBlocks(count: number): Promise<BlockView[]> {
    const from = Math.max(1, this.head().height - count + 1)
    return (await this.canonicalBlocks(from, count)).reverse()
  }

  async blockByHash(hashHex: string): Promise<BlockView | undefined> {
    const b = await this.svc.blockByHash(hashHex.toLowerCase())
    return b === undefined ? undefined : blockViewOn(this, b)
  }

  /** Final blocks from height 1, as bytes (tests compare chains). */
  finalBlockBytes(from: number, count: number): Promise<Uint8Array[]> {
    return this.svc.canonicalBlocks(from, Math.min(count, Math.max(0, this.finalized().height - from + 1)))
  }

  // --- user input -----------------------------------------------------------------------------

  async submitReading(bpm: number): Promise<Reading> {
    const r = await this.svc.submitReading(bpm, (x) => this.publish('readings', encodeReading(x)))
    this.events.emit('submitted', { reading: r })
    return r
  }

  /** Send `amount` tokens to `to` (a peer id): checked, kept until a block holds it, gossiped. */
  async submitTransfer(to: string, amount: number): Promise<Transfer> {
    const t = await this.svc.submitTransfer(publicKeyOfAddress(to), amount)
    this.publish('transfers', encodeTransfer(t))
    this.events.emit('transfer', { transfer: t })
    return t
  }

  /** What this peer can spend now (free minus pending transfers) and may stake (genesis networks). */
  funds(): { free: number; pending: number; stakeLimit: number | undefined } {
    const { free, pending } = this.svc.spendable()
    return { free, pending, stakeLimit: this.svc.stakeLimit() }
  }

  accounts(): AccountRow[] {
    return accountRows(this)
  }

  async setStake(stake: number): Promise<void> {
    const s = await this.svc.announceStake(stake)
    this.publish('stakes', encodeStake(s))
  }

  /** Wait for every pending storage write. */
  flush(): Promise<void> {
    return this.svc.flush()
  }

  // --- shutdown ---------------------------------------------------------------------------------

  /**
   * Stop. Graceful: announce leave (stake 0) when we have stake and keep voting up to `leaveSlots`
   * slots until a final block holds it (our stake counts until the leave is final and its exit
   * delay is over: leaving earlier would hold finality back), then close libp2p and storage.
   * Idempotent.
   */
  stop(opts: { graceful?: boolean; leaveSlots?: number; onLeaving?: () => void } = {}): Promise<StopResult> {
    this.stopping ??= this.doStop(opts.graceful ?? true, opts.leaveSlots ?? 6, opts.onLeaving)
    return this.stopping
  }

  private async doStop(graceful: boolean, leaveSlots: number, onLeaving?: () => void): Promise<StopResult> {
    const registered = (this.head().state.stakes.get(this.svc.me)?.stake ?? 0) > 0
    let leave: StopResult['leave'] = 'none'
    if (graceful && registered) {
      await this.setStake(0).catch(() => {})
      onLeaving?.()
      const deadline = this.now() + leaveSlots * this.config.params.slotMs + 200
      while (!this.svc.ownLeaveFinal() && this.now() < deadline) await sleep(50)
      leave = this.svc.ownLeaveFinal() ? 'seen' : 'timeout'
    }
    await this.slots.stop()
    this.parents.close()
    await this.rangeSync.close()
    await this.p2p.stop().catch((err: Error) => this.log('debug', `libp2p stop: ${err.message}`))
    await this.svc.flush()
    await this.store.close()
    return { leave }
  }
}
