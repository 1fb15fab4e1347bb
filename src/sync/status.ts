import type { PeerId } from '@libp2p/interface'
import { equalBytes, toHex } from '../core/bytes.js'
import { decodeBlock } from '../core/records.js'
import { MAX_STATUS_PEERS, type Status } from '../network/reqresp.js'
import type { Logger } from '../util/logger.js'
import type { SyncChain, SyncNetwork } from './interfaces.js'
import type { RangeSync } from './range-sync.js'

/** Joined peers exchange status with one peer this often (anti-entropy); joining ones more often. */
const STATUS_EVERY_SLOTS = 16
const JOIN_STATUS_EVERY_SLOTS = 4
/**
 * Slots a peer waits, meeting only fresh peers, before the lowest validator id begins the chain;
 * after twice as long with still no chain anywhere, any fresh validator begins (a silent peer
 * with a low id must not hold the network back; connected beginners merge by fork choice).
 */
const FRESH_START_SLOTS = 5
/** Bound on the remembered statuses (one per peer). */
const MAX_STATUSES = 10_000

export interface StatusSyncOptions {
  readonly chain: SyncChain
  readonly network: SyncNetwork
  readonly rangeSync: RangeSync
  /** Our peer id (the fresh-network rule compares ids). */
  readonly self: string
  /** The slot we started in. */
  readonly startedSlot: number
  readonly now: () => number
  readonly log: Logger
  /** Our status (what we send), including the peers we know for peer exchange. */
  readonly peerAddrs: (max: number) => string[]
  /** --checkpoint: a peer whose finalized block at that height differs is refused at once. */
  readonly checkpoint?: { readonly height: number; readonly hashHex: string }
  /** Our only place to join (the local default port) is another network's peer: we began alone. */
  readonly beganAlone?: (otherNetworkHex: string) => void
}

/** Blocks asked of a peer whose finalized chain conflicts with ours, to look for equivocators. */
const CONFLICT_WINDOW = 64

/**
 * Status exchange and what hangs on it: refusing a peer of another network or with a conflicting
 * finalized chain, peer exchange, starting range sync when a peer is ahead, the join gate (a peer
 * with somewhere to join never proposes before it has caught up), the fresh-network rule, and
 * periodic catch-up (anti-entropy).
 */
export class StatusSync {
  /** False until we have caught up with a peer (or have nobody to join). */
  private joinedNetwork = false
  private readonly startedAt: number
  private lastJoinWarning = 0
  /** Head height and stake each peer reported in its last status (join gate). */
  private readonly peerStatus = new Map<string, { height: number; stake: number }>()

  constructor(private readonly opts: StatusSyncOptions) {
    this.startedAt = opts.now()
  }

  /** Once the network is up: a peer with nowhere to join has joined (it begins the network). */
  begin(): void {
    if (!this.opts.network.hasBootstrap()) this.joinedNetwork = true
  }

  get joined(): boolean {
    return this.joinedNetwork
  }

  /** Our status, as sent in every exchange. */
  localStatus(): Status {
    const { chain } = this.opts
    const root = chain.root()
    const head = chain.head()
    return {
      networkId: chain.config.id,
      headHash: head.hash,
      headHeight: head.height,
      finalizedHash: root.hash,
      finalizedHeight: root.height,
      peers: this.opts.peerAddrs(MAX_STATUS_PEERS),
      stake: chain.stake,
    }
  }

  /** Slot tick: while joining, look for a chain (or begin a fresh one); once joined, anti-entropy. */
  onSlot(slot: number): void {
    if (this.joinedNetwork) {
      this.statusInTurn(slot, STATUS_EVERY_SLOTS)
      return
    }
    this.statusInTurn(slot, JOIN_STATUS_EVERY_SLOTS)
    if (this.mayBeginFreshNetwork(slot)) {
      this.joinedNetwork = true
      this.opts.log('info', 'no peer has a chain yet: beginning the network (lowest validator id among fresh peers)')
      return
    }
    const now = this.opts.now()
    if (now - this.lastJoinWarning > 15_000 && now - this.startedAt > 10_000) {
      this.lastJoinWarning = now
      this.opts.log(
        'warn',
        'waiting to reach a peer of this network before proposing (start without --bootstrap, on a free port 9090, to begin a new network)',
      )
    }
  }

  /**
   * A peer's status arrived (as a request, or as the answer to ours). False: it was refused.
   */
  onStatus(peer: PeerId, status: Status): boolean {
    const { chain, network } = this.opts
    const config = chain.config
    if (!equalBytes(status.networkId, config.id)) {
      if (!this.joinedNetwork && network.isOnlyDefaultPeer(peer)) {
        this.joinedNetwork = true
        this.opts.beganAlone?.(toHex(status.networkId))
      }
      network.refuse(
        peer,
        `it is on network ${toHex(status.networkId).slice(0, 16)}, we are on ${config.idHex.slice(0, 16)} (check --network and --slot-ms)`,
      )
      return false
    }
    // Peer exchange: dial the peers it is connected to (backs up pubsub peer discovery).
    network.dialKnown(status.peers)
    // Range-sync when it has final blocks we lack, or is more than one block ahead (one block is
    // just this slot's candidate on its way: gossip brings it).
    if (status.headHeight > chain.head().height + 1 || status.finalizedHeight > chain.root().height)
      void this.syncFrom(peer, status)
    return true
  }

  /** The conflicting peer's blocks around `height`, checked for slashable votes against ours. */
  private async inspectConflict(peer: PeerId, height: number): Promise<number> {
    try {
      const from = Math.max(1, height - CONFLICT_WINDOW / 2)
      const bytes = await this.opts.network.blocksByRange(peer, from, CONFLICT_WINDOW)
      return this.opts.chain.inspectForeign(bytes.map((b) => decodeBlock(this.opts.chain.config, b)))
    } catch (err) {
      this.opts.log('debug', `blocks of conflicting peer ${peer}: ${(err as Error).message}`)
      return 0
    }
  }

  /** Ask a peer for its status and act on it. */
  async exchange(peer: PeerId): Promise<void> {
    const { chain, network } = this.opts
    try {
      const status = await network.status(peer)
      if (!this.onStatus(peer, status)) return
      const cp = this.opts.checkpoint
      if (cp !== undefined && status.finalizedHeight === cp.height && toHex(status.finalizedHash) !== cp.hashHex) {
        network.refuse(peer, `its finalized block at height ${cp.height} contradicts --checkpoint`)
        return
      }
      if (this.peerStatus.size > MAX_STATUSES) this.peerStatus.clear()
      this.peerStatus.set(peer.toString(), { height: status.headHeight, stake: status.stake })
      if (status.finalizedHeight <= chain.root().height) {
        const ours = status.finalizedHeight === 0 ? chain.config.idHex : await chain.finalHashAt(status.finalizedHeight)
        if (ours !== undefined && ours !== toHex(status.finalizedHash)) {
          // Before we part: if validators signed both chains, their headers convict them (FFG's
          // accountable safety); the evidence goes to our network and into our next block.
          const evidence = await this.inspectConflict(peer, status.finalizedHeight)
          network.refuse(
            peer,
            `its finalized block at height ${status.finalizedHeight} conflicts with ours (${evidence > 0 ? `${evidence} validator(s) signed both chains: evidence taken` : 'one of the two chains was started alone'})`,
          )
          return
        }
      }
      // Two fresh peers meeting each other have nothing to join: wait for a peer with a chain,
      // or two lone chains would each finalize by themselves and never merge.
      const someChain = status.headHeight > 0 || chain.head().height > 0
      if (!this.opts.rangeSync.isSyncingFrom(peer) && someChain) this.joinedNetwork = true
    } catch (err) {
      this.opts.log('debug', `status with ${peer} failed: ${(err as Error).message}`)
    }
  }

  private async syncFrom(peer: PeerId, status: Status): Promise<void> {
    if (await this.opts.rangeSync.syncFrom(peer, status)) this.joinedNetwork = true
  }

  /**
   * Exchange status with one connected peer (each in turn) every `every` slots, unless a sync
   * runs. While joining, to find a chain; once joined, anti-entropy: gossip and parent fetches
   * normally keep us current, this catches what they miss (a connection that stayed up through a
   * network cut sends no new status).
   */
  private statusInTurn(slot: number, every: number): void {
    if (slot % every !== 0 || this.opts.rangeSync.active) return
    const peers = this.opts.network.connectedPeers()
    if (peers.length > 0) void this.exchange(peers[Math.floor(slot / every) % peers.length])
  }

  /**
   * Fresh peers that all bootstrap to each other (a docker-compose network) would wait for a chain
   * forever. After a few slots in which every connected peer reported an empty chain, the validator
   * with the lowest peer id among them (the stake is in the status) begins; the others join its
   * chain like any other.
   */
  private mayBeginFreshNetwork(slot: number): boolean {
    const { chain, network } = this.opts
    const peers = network.connectedPeers()
    if (chain.head().height > 0 || chain.stake === 0 || peers.length === 0) return false
    const waited = slot - this.opts.startedSlot
    if (waited < FRESH_START_SLOTS) return false
    const fresh = peers.map((p) => ({ id: p.toString(), status: this.peerStatus.get(p.toString()) }))
    if (!fresh.every((p) => p.status?.height === 0)) return false
    if (waited >= 2 * FRESH_START_SLOTS) return true
    return fresh.every((p) => (p.status?.stake ?? 0) === 0 || this.opts.self < p.id)
  }
}
