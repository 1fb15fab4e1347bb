import { createServer } from 'node:net'
import type { GossipSub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import type { Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { pubsubPeerDiscovery } from '@libp2p/pubsub-peer-discovery'
import { tcp } from '@libp2p/tcp'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import type { Network } from '../core/params.js'
import { TypedEmitter } from '../node/events.js'
import {
  createGossipService,
  DISCOVERY_INTERVAL_MS,
  Gossip,
  gossipServiceConfig,
  type TopicHandlers,
} from './gossip.js'
import { discoveryTopic } from './names.js'
import { ReqResp, type ReqRespServer } from './reqresp.js'

export const DEFAULT_PORT = 9090
/** Upkeep rounds (2 s apart) a connection may fail the gossip check before it is closed. */
const GOSSIP_CHECKS = 4

export class NetworkConfigError extends Error {
  override name = 'NetworkConfigError'
}

export class PortInUseError extends Error {
  override name = 'PortInUseError'
}

/** `/ip4/1.2.3.4/tcp/9090[/p2p/<id>]`, `host:port` or `dns-name:port` to a multiaddr. */
export function parseBootstrap(addr: string): Multiaddr {
  const s = addr.trim()
  if (s.startsWith('/')) {
    try {
      const ma = multiaddr(s)
      if (!ma.protoNames().includes('tcp')) throw new Error('no tcp')
      return ma
    } catch {
      throw new NetworkConfigError(`--bootstrap ${addr}: not a TCP multiaddr (expected e.g. /ip4/127.0.0.1/tcp/9090)`)
    }
  }
  const m = /^(\[?[0-9a-fA-F:.]+\]?|[a-zA-Z0-9.-]+):(\d{1,5})$/.exec(s)
  const port = m === null ? Number.NaN : Number(m[2])
  if (m === null || port < 1 || port > 65535) {
    throw new NetworkConfigError(`--bootstrap ${addr}: expected host:port (e.g. 127.0.0.1:9090) or a multiaddr`)
  }
  const host = m[1].replace(/^\[|\]$/g, '')
  const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns4'
  return multiaddr(`/${proto}/${host}/tcp/${port}`)
}

async function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

const isLoopback = (host: string) => host === 'localhost' || host.startsWith('127.') || host === '::1'

export interface P2POptions {
  readonly net: Network
  readonly privateKey: PrivateKey
  readonly host: string
  /** Explicit port: an error when taken. Undefined: 9090, or a free port plus a dial to 9090. */
  readonly port?: number
  readonly bootstrap: readonly string[]
  readonly mdns: boolean
  readonly handlers: TopicHandlers
  readonly server: ReqRespServer
  /** libp2p's own metrics (e.g. @libp2p/prometheus-metrics), when the HTTP API serves /metrics. */
  readonly metrics?: Libp2pOptions['metrics']
  readonly log: (level: 'debug' | 'info' | 'warn', msg: string) => void
}

export interface P2PEvents {
  'peer:connect': { peerId: PeerId }
  'peer:disconnect': { peerId: PeerId }
  'peer:refused': { peerId: PeerId; reason: string }
}

/**
 * The libp2p node: TCP + Noise + Yamux, identify, ping, gossipsub, pubsub peer discovery, our
 * req/resp protocols, a denylist in the connection gater, and redial of bootstrap addresses.
 */
export class P2P {
  readonly events = new TypedEmitter<P2PEvents>()
  readonly gossip: Gossip
  readonly reqresp: ReqResp
  private readonly bootstrapAddrs: Multiaddr[]
  private readonly timers = new Set<NodeJS.Timeout>()
  private stopped = false

  private constructor(
    readonly node: Libp2p<{ pubsub: GossipSub }>,
    private readonly opts: P2POptions,
    gossip: Gossip,
    bootstrap: Multiaddr[],
    private readonly denied: Map<string, number>,
  ) {
    this.gossip = gossip
    this.bootstrapAddrs = bootstrap
    this.reqresp = new ReqResp(node, opts.net, opts.server)
  }

  static async create(opts: P2POptions): Promise<P2P> {
    const bootstrap = opts.bootstrap.map(parseBootstrap)
    let port = opts.port
    if (port === undefined) {
      if (await portFree(opts.host, DEFAULT_PORT)) {
        port = DEFAULT_PORT
      } else {
        port = 0
        const local = isLoopback(opts.host) || opts.host === '0.0.0.0' ? '127.0.0.1' : opts.host
        bootstrap.unshift(multiaddr(`/ip4/${local}/tcp/${DEFAULT_PORT}`))
      }
    } else if (port !== 0 && !(await portFree(opts.host, port))) {
      throw new PortInUseError(
        `port ${port} on ${opts.host} is already in use: pick another --port, or leave it out to get a free one`,
      )
    }
    const { options } = gossipServiceConfig({ net: opts.net, maxMessageBytes: opts.net.params.maxBlockBytes })
    const denied = new Map<string, number>()
    const isDenied = (peer: PeerId) => (denied.get(peer.toString()) ?? 0) > Date.now()
    const loopbackOnly = isLoopback(opts.host)
    let node: Libp2p<{ pubsub: GossipSub }>
    try {
      node = await createLibp2p({
        privateKey: opts.privateKey,
        addresses: { listen: [`/ip4/${opts.host}/tcp/${port}`] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        peerDiscovery: [
          pubsubPeerDiscovery({ interval: DISCOVERY_INTERVAL_MS, topics: [discoveryTopic(opts.net)] }),
          ...(opts.mdns ? [mdns()] : []),
        ],
        connectionManager: { maxConnections: 200 },
        ...(opts.metrics === undefined ? {} : { metrics: opts.metrics }),
        connectionGater: {
          denyDialPeer: isDenied,
          denyInboundEncryptedConnection: isDenied,
          denyOutboundEncryptedConnection: isDenied,
          // A loopback peer never learns or dials an address outside this machine.
          filterMultiaddrForPeer: async (_peer, ma) => !loopbackOnly || isLoopbackAddr(ma),
          denyDialMultiaddr: async (ma) => loopbackOnly && !isLoopbackAddr(ma),
        },
        services: {
          identify: identify(),
          ping: ping(),
          pubsub: createGossipService(options),
        },
      })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EADDRINUSE')
        throw new PortInUseError(`port ${port} on ${opts.host} is already in use: pick another --port`)
      throw err
    }
    const p2p: P2P = new P2P(
      node,
      opts,
      new Gossip(node.services.pubsub, opts.net, opts.handlers, {
        badSubscriptions: (peer, reason) => p2p.refuse(peer, reason),
      }),
      bootstrap,
      denied,
    )
    await p2p.start()
    return p2p
  }

  private async start(): Promise<void> {
    this.node.addEventListener('peer:connect', (evt) => this.events.emit('peer:connect', { peerId: evt.detail }))
    this.node.addEventListener('peer:identify', (evt) => {
      const { peerId, listenAddrs } = evt.detail
      const usable = listenAddrs.find(
        (ma) => ma.protoNames().includes('tcp') && (!isLoopback(this.opts.host) || isLoopbackAddr(ma)),
      )
      if (usable === undefined) return
      if (this.listenAddrOf.size > 1000) this.listenAddrOf.clear()
      this.listenAddrOf.set(peerId.toString(), usable.decapsulateCode(421).toString())
    })
    this.node.addEventListener('peer:disconnect', (evt) => {
      this.gossip.forgetPeer(evt.detail)
      this.events.emit('peer:disconnect', { peerId: evt.detail })
    })
    this.node.addEventListener('peer:discovery', (evt) => {
      const peer = evt.detail.id
      if (this.stopped || peer.equals(this.node.peerId) || this.isDenied(peer)) return
      if (this.node.getConnections(peer).length > 0) return
      this.node.dial(peer, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => {
        this.opts.log('debug', `dial ${peer} failed: ${err.message}`)
      })
    })
    this.gossip.start()
    await this.reqresp.start()
    for (const ma of this.bootstrapAddrs) this.keepDialing(ma, 500)
    this.maintain()
  }

  private readonly redial = new Map<string, { failures: number; next: number }>()
  private readonly listenAddrOf = new Map<string, string>()

  /**
   * Discovery events come once per peer; a dial that fails then (the peer was still starting, or
   * we knew no address yet) would never be retried. So every few seconds, dial the known peers we
   * are not connected to, with a per-peer backoff, a few at a time.
   */
  private maintain(): void {
    if (this.stopped) return
    const timer = setTimeout(async () => {
      this.timers.delete(timer)
      try {
        await this.checkGossip()
        const now = Date.now()
        const known = await this.node.peerStore.all()
        const todo = known.filter((p) => {
          if (p.id.equals(this.node.peerId) || p.addresses.length === 0 || this.isDenied(p.id)) return false
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
              if (this.redial.size > 1000) this.redial.clear()
              this.redial.set(key, { failures, next: Date.now() + Math.min(15_000, 1000 * 2 ** failures) })
            }
          }),
        )
      } catch (err) {
        this.opts.log('debug', `connection upkeep: ${(err as Error).message}`)
      }
      this.maintain()
    }, 2000)
    timer.unref()
    this.timers.add(timer)
  }

  private readonly gossipFailures = new Map<string, number>()

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
    if (this.stopped) return
    const timer = setTimeout(async () => {
      this.timers.delete(timer)
      if (this.stopped) return
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
    }, delayMs)
    timer.unref()
    this.timers.add(timer)
  }

  isDenied(peer: PeerId): boolean {
    return (this.denied.get(peer.toString()) ?? 0) > Date.now()
  }

  /** Disconnect a peer and refuse it for `ms`. */
  refuse(peer: PeerId, reason: string, ms = 10 * 60_000): void {
    if (this.denied.size > 10_000) this.denied.clear()
    this.denied.set(peer.toString(), Date.now() + ms)
    this.events.emit('peer:refused', { peerId: peer, reason })
    void this.node.hangUp(peer).catch(() => {})
  }

  /** True when this peer has somewhere to join (a --bootstrap address, or the local 9090 peer). */
  get hasBootstrap(): boolean {
    return this.bootstrapAddrs.length > 0
  }

  /** Multiaddrs (with /p2p/) of up to `max` connected peers, for peer exchange. */
  peerAddrs(max: number): string[] {
    const out: string[] = []
    // The address a peer listens on is what identify told us, not the remote port of an inbound
    // connection.
    for (const peer of this.node.getPeers()) {
      if (out.length >= max) break
      const addr = this.listenAddrOf.get(peer.toString())
      if (addr !== undefined) out.push(`${addr}/p2p/${peer}`)
    }
    return out
  }

  /** Dial peer-exchange addresses we are not connected to (bounded, loopback rules apply). */
  dialKnown(addrs: readonly string[]): void {
    for (const a of addrs.slice(0, 16)) {
      let ma: Multiaddr
      try {
        ma = multiaddr(a)
      } catch {
        continue
      }
      const id = ma.getPeerId()
      if (id === null || id === this.node.peerId.toString()) continue
      if (this.node.getConnections().some((c) => c.remotePeer.toString() === id)) continue
      if (this.denied.has(id) && (this.denied.get(id) ?? 0) > Date.now()) continue
      this.node.dial(ma, { signal: AbortSignal.timeout(5000) }).catch((err: Error) => {
        this.opts.log('debug', `peer exchange dial ${a} failed: ${err.message}`)
      })
    }
  }

  listenAddrs(): string[] {
    return this.node.getMultiaddrs().map((ma) => ma.toString())
  }

  connectedPeers(): PeerId[] {
    return this.node.getPeers()
  }

  /** Open connections: who, the address we reach it on, which side dialled, and since when. */
  connections(): { peerId: string; addr: string; direction: string; since: number }[] {
    return this.node.getConnections().map((c) => ({
      peerId: c.remotePeer.toString(),
      addr: (this.listenAddrOf.get(c.remotePeer.toString()) ?? c.remoteAddr).toString(),
      direction: c.direction,
      since: c.timeline.open,
    }))
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    for (const t of this.timers) clearTimeout(t)
    this.timers.clear()
    this.gossip.stop()
    await this.reqresp.stop().catch(() => {})
    await this.node.stop()
  }
}

function isLoopbackAddr(ma: Multiaddr): boolean {
  const opts = ma.toOptions()
  return isLoopback(opts.host)
}

/** A dialled multiaddr and the remote address of the resulting connection name the same host:port. */
function sameTarget(remote: Multiaddr, target: Multiaddr): boolean {
  const a = remote.toOptions()
  const b = target.toOptions()
  return a.port === b.port && (a.host === b.host || (isLoopback(a.host) && isLoopback(b.host)))
}
