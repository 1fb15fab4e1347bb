import type { GossipSub } from '@chainsafe/libp2p-gossipsub'
import type { Libp2p, PeerId } from '@libp2p/interface'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { TypedEmitter } from '../util/emitter.js'
import type { Logger } from '../util/logger.js'
import { isLoopback, isLoopbackAddr, sameTarget } from './addresses.js'
import type { Gossip } from './gossip.js'

/** Upkeep rounds (UPKEEP_MS apart) a connection may fail the gossip check before it is closed. */
const GOSSIP_CHECKS = 4
const UPKEEP_MS = 2000
/** Invalid gossip messages from one peer within a window that get it disconnected and refused. */
const MAX_REJECTS = 20
const REJECT_WINDOW_MS = 60_000
/** How long a refused peer stays refused. */
export const REFUSE_MS = 10 * 60_000
/** Bound on every per-peer map here: beyond it the map starts over (a flood of fresh ids). */
const MAX_TRACKED_PEERS = 10_000
/** Peer-exchange addresses dialled per status, and in all per minute (a status is cheap to send). */
const MAX_EXCHANGE_DIALS = 8
const MAX_EXCHANGE_DIALS_PER_MINUTE = 64
/** A peer-exchange address (host:port) is dialled at most once in this window. */
const EXCHANGE_REDIAL_MS = 60_000

/**
 * Peers refused for a while. It exists before the libp2p node does: the connection gater asks it.
 */
export class DenyList {
  private readonly until = new Map<string, number>()

  constructor(private readonly now: () => number = Date.now) {}

  has(peer: PeerId | string): boolean {
    return (this.until.get(peer.toString()) ?? 0) > this.now()
  }

  add(peer: PeerId | string, ms: number): void {
    if (this.until.size > MAX_TRACKED_PEERS) this.until.clear()
    this.until.set(peer.toString(), this.now() + ms)
  }
}

export interface PeerManagerEvents {
  'peer:refused': { peerId: PeerId; reason: string }
}

export interface PeerManagerOptions {
  /** The address we listen on: a loopback peer only ever learns and dials loopback addresses. */
  readonly host: string
  readonly bootstrap: readonly Multiaddr[]
  /** The local peer on the default port (9090), dialled because it held the port we wanted. */
  readonly defaultPeer?: Multiaddr
  readonly log: Logger
}

/**
 * Who we are connected to and who we refuse: redial with backoff, bootstrap addresses kept
 * dialled, a gossip health check per connection, peer exchange, and counting of invalid
 * messages per peer (too many: refused).
 */
export class PeerManager {
  readonly events = new TypedEmitter<PeerManagerEvents>()
  private readonly timers = new Set<NodeJS.Timeout>()
  private readonly redial = new Map<string, { failures: number; next: number }>()
  private readonly listenAddrOf = new Map<string, string>()
  private readonly gossipFailures = new Map<string, number>()
  private readonly rejects = new Map<string, { count: number; since: number }>()
  /** host:port -> when peer exchange last dialled it. */
  private readonly exchangeDialled = new Map<string, number>()
  private exchangeWindow = { start: 0, dials: 0 }
  private stopped = false

  constructor(
    private readonly node: Libp2p<{ pubsub: GossipSub }>,
    private readonly gossip: Gossip,
    readonly denied: DenyList,
    private readonly opts: PeerManagerOptions,
  ) {}

  start(): void {
    this.node.addEventListener('peer:identify', this.onIdentify)
    this.node.addEventListener('peer:discovery', this.onDiscovery)
    for (const ma of this.opts.bootstrap) this.keepDialing(ma, 500)
    this.upkeep()
  }

  stop(): void {
    this.stopped = true
    this.node.removeEventListener('peer:identify', this.onIdentify)
    this.node.removeEventListener('peer:discovery', this.onDiscovery)
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
  }

  /** True when this peer has somewhere to join (a --bootstrap address, or the local 9090 peer). */
  get hasBootstrap(): boolean {
    return this.opts.bootstrap.length > 0
  }

  /**
   * True when our only place to join is the local default-port peer (no --bootstrap) and `peer`
   * is the one there: if it is on another network, there is nobody to wait for.
   */
  isOnlyDefaultPeer(peer: PeerId): boolean {
    const d = this.opts.defaultPeer
    if (d === undefined || this.opts.bootstrap.length !== 1) return false
    return this.node.getConnections(peer).some((c) => sameTarget(c.remoteAddr, d))
  }

  /** Disconnect a peer and refuse it for `ms`. */
  refuse(peer: PeerId, reason: string, ms = REFUSE_MS): void {
    this.denied.add(peer, ms)
    this.events.emit('peer:refused', { peerId: peer, reason })
    void this.node.hangUp(peer).catch(() => {})
  }

  /** A gossip message from `peer` was invalid: too many in a window and it is refused. */
  countReject(peer: PeerId): void {
    const key = peer.toString()
    const now = Date.now()
    let r = this.rejects.get(key)
    if (r === undefined || now - r.since > REJECT_WINDOW_MS) r = { count: 0, since: now }
    r.count++
    if (this.rejects.size > MAX_TRACKED_PEERS) this.rejects.clear()
    this.rejects.set(key, r)
    if (r.count >= MAX_REJECTS) {
      this.rejects.delete(key)
      this.refuse(peer, `sent ${r.count} invalid messages in ${Math.round((now - r.since) / 1000)} s`)
    }
  }

  /** The address a connected peer listens on (from identify), not an inbound connection's port. */
  listenAddr(peer: PeerId | string): string | undefined {
    return this.listenAddrOf.get(peer.toString())
  }

  /** Multiaddrs (with /p2p/) of up to `max` connected peers, for peer exchange. */
  peerAddrs(max: number): string[] {
    const out: string[] = []
    for (const peer of this.node.getPeers()) {
      if (out.length >= max) break
      const addr = this.listenAddrOf.get(peer.toString())
      if (addr !== undefined) out.push(`${addr}/p2p/${peer}`)
    }
    return out
  }

  /**
   * Dial peer-exchange addresses we are not connected to. A status is anyone's to send, so this is
   * bounded three ways (a few per status, a few per minute, one dial per host:port per minute): a
   * stranger cannot make us open connections to a place of its choosing. A loopback peer dials
   * only loopback addresses; any other peer never dials loopback or unspecified ones.
   */
  dialKnown(addrs: readonly string[]): void {
    const now = Date.now()
    if (now - this.exchangeWindow.start > 60_000) this.exchangeWindow = { start: now, dials: 0 }
    let dials = 0
    for (const a of addrs) {
      if (dials >= MAX_EXCHANGE_DIALS || this.exchangeWindow.dials >= MAX_EXCHANGE_DIALS_PER_MINUTE) return
      let ma: Multiaddr
      try {
        ma = multiaddr(a)
      } catch {
        continue
      }
      const id = ma.getPeerId()
      if (id === null || id === this.node.peerId.toString() || this.denied.has(id)) continue
      if (this.node.getConnections().some((c) => c.remotePeer.toString() === id)) continue
      const { host, port } = ma.toOptions()
      if (isLoopback(this.opts.host) !== isLoopback(host) || host === '0.0.0.0' || host === '::') continue
      const target = `${host}:${port}`
      if (now - (this.exchangeDialled.get(target) ?? 0) < EXCHANGE_REDIAL_MS) continue
      if (this.exchangeDialled.size > MAX_TRACKED_PEERS) this.exchangeDialled.clear()
      this.exchangeDialled.set(target, now)
      dials++
      this.exchangeWindow.dials++
      this.node.dial(ma, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => {
        this.opts.log('debug', `peer exchange dial ${a} failed: ${err.message}`)
      })
    }
  }

  private readonly onIdentify = (evt: CustomEvent<{ peerId: PeerId; listenAddrs: Multiaddr[] }>): void => {
    const { peerId, listenAddrs } = evt.detail
    const loopbackOnly = isLoopback(this.opts.host)
    const usable = listenAddrs.find((ma) => ma.protoNames().includes('tcp') && (!loopbackOnly || isLoopbackAddr(ma)))
    if (usable === undefined) return
    if (this.listenAddrOf.size > MAX_TRACKED_PEERS) this.listenAddrOf.clear()
    this.listenAddrOf.set(peerId.toString(), usable.decapsulateCode(421).toString())
  }

  private readonly onDiscovery = (evt: CustomEvent<{ id: PeerId }>): void => {
    const peer = evt.detail.id
    if (this.stopped || peer.equals(this.node.peerId) || this.denied.has(peer)) return
    if (this.node.getConnections(peer).length > 0) return
    this.node.dial(peer, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => {
      this.opts.log('debug', `dial ${peer} failed: ${err.message}`)
    })
  }

  private later(ms: number, fn: () => Promise<void>): void {
    if (this.stopped) return
    const timer = setTimeout(() => {
      this.timers.delete(timer)
      if (!this.stopped) void fn()
    }, ms)
    timer.unref()
    this.timers.add(timer)
  }

  /**
   * Discovery events come once per peer; a dial that fails then (the peer was still starting, or
   * we knew no address yet) would never be retried. So every few seconds, dial the known peers we
   * are not connected to, with a per-peer backoff, a few at a time.
   */
  private upkeep(): void {
    this.later(UPKEEP_MS, async () => {
      try {
        await this.checkGossip()
        await this.redialKnown()
      } catch (err) {
        this.opts.log('debug', `connection upkeep: ${(err as Error).message}`)
      }
      this.upkeep()
    })
  }

  private async redialKnown(): Promise<void> {
    const now = Date.now()
    const known = await this.node.peerStore.all()
    const todo = known.filter((p) => {
      if (p.id.equals(this.node.peerId) || p.addresses.length === 0 || this.denied.has(p.id)) return false
      if (this.node.getConnections(p.id).length > 0) return false
      return (this.redial.get(p.id.toString())?.next ?? 0) <= now
    })
    await Promise.all(
      todo.slice(0, 8).map(async (p) => {
        const key = p.id.toString()
        try {
          await this.node.dial(p.id, { signal: AbortSignal.timeout(10_000) })
          this.redial.delete(key)
        } catch (err) {
          this.opts.log('debug', `redial ${key} failed: ${(err as Error).message}`)
          const failures = (this.redial.get(key)?.failures ?? 0) + 1
          if (this.redial.size > MAX_TRACKED_PEERS) this.redial.clear()
          this.redial.set(key, { failures, next: Date.now() + Math.min(15_000, 1000 * 2 ** failures) })
        }
      }),
    )
  }

  /**
   * A connection whose gossip is broken (see Gossip.gossipWorks) for GOSSIP_CHECKS checks in a row
   * is closed, so the redial opens fresh streams: otherwise a peer could stay connected and deaf
   * after a network cut heals (seen in the compose partition test).
   */
  private async checkGossip(): Promise<void> {
    const connected = this.node.getPeers()
    const live = new Set(connected.map(String))
    for (const key of this.gossipFailures.keys()) if (!live.has(key)) this.gossipFailures.delete(key)
    for (const peer of connected) {
      const key = peer.toString()
      if (this.gossip.gossipWorks(peer)) {
        this.gossipFailures.delete(key)
        continue
      }
      const failures = (this.gossipFailures.get(key) ?? 0) + 1
      this.gossipFailures.set(key, failures)
      if (failures >= GOSSIP_CHECKS) {
        this.gossipFailures.delete(key)
        this.opts.log('info', `gossip with ${key} is broken: reconnecting`)
        await this.node.hangUp(peer).catch(() => {})
      }
    }
  }

  /** Dial a bootstrap address, and again with backoff whenever we are not connected to it. */
  private keepDialing(ma: Multiaddr, delayMs: number): void {
    this.later(delayMs, async () => {
      let next = Math.min(delayMs * 2, 30_000)
      const connected = this.node.getConnections().some((c) => c.remoteAddr.equals(ma) || sameTarget(c.remoteAddr, ma))
      if (connected) {
        next = 5_000
      } else {
        try {
          await this.node.dial(ma, { signal: AbortSignal.timeout(5000) })
          next = 5_000
        } catch (err) {
          this.opts.log('debug', `bootstrap ${ma.toString()} not reachable: ${(err as Error).message}`)
        }
      }
      this.keepDialing(ma, next)
    })
  }
}
