import type { GossipSub } from '@chainsafe/libp2p-gossipsub'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import type { ComponentLogger, Libp2p, PeerId, PrivateKey } from '@libp2p/interface'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { pubsubPeerDiscovery } from '@libp2p/pubsub-peer-discovery'
import { tcp } from '@libp2p/tcp'
import type { Multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2pOptions } from 'libp2p'
import type { ChainConfig } from '../core/params.js'
import { TypedEmitter } from '../util/emitter.js'
import type { Logger } from '../util/logger.js'
import { chooseListenPort, isLoopback, isLoopbackAddr, PortInUseError } from './addresses.js'
import {
  createGossipService,
  DISCOVERY_INTERVAL_MS,
  Gossip,
  type GossipHandlers,
  gossipServiceConfig,
  SpamMeter,
} from './gossip.js'
import { DenyList, PeerManager } from './peer-manager.js'
import { ReqResp, type ReqRespHandlers, type Status } from './reqresp.js'
import { discoveryTopic, type Topic } from './topics.js'

export interface P2POptions {
  readonly net: ChainConfig
  readonly privateKey: PrivateKey
  readonly host: string
  /** Explicit port: an error when taken. Undefined: 9090, or a free port plus a dial to 9090. */
  readonly port?: number
  readonly bootstrap: readonly string[]
  readonly mdns: boolean
  readonly gossipHandlers: GossipHandlers
  /** Which messages go first in their topic's validation queue. */
  readonly gossipUrgent?: (topic: Topic, data: Uint8Array) => boolean
  readonly reqrespHandlers: ReqRespHandlers
  readonly localStatus: () => Status
  /** libp2p's own metrics (e.g. @libp2p/prometheus-metrics), when the HTTP API serves /metrics. */
  readonly metrics?: Libp2pOptions['metrics']
  readonly log: Logger
  /** Test seam: the port a peer without --port takes (or, taken, dials): 9090. */
  readonly defaultPort?: number
  /** libp2p's own loggers (--log-level debug maps them into ours); libp2p's default otherwise. */
  readonly libp2pLogger?: ComponentLogger
}

export interface P2PEvents {
  'peer:connect': { peerId: PeerId }
  'peer:disconnect': { peerId: PeerId }
  'peer:refused': { peerId: PeerId; reason: string }
  /** A gossip message was rejected (invalid): counted against its sender. */
  'gossip:rejected': { peerId: PeerId; topic: Topic; code: string }
}

export interface ConnectionInfo {
  peerId: string
  /** Where the peer listens (from identify), else the remote address of the connection. */
  addr: string
  direction: string
  since: number
}

/**
 * The libp2p node: TCP + Noise + Yamux, identify, ping, gossipsub, pubsub peer discovery, our
 * req/resp protocols, and the peer manager. Builds, starts, stops, and answers queries; the node
 * above it decides what messages mean.
 */
export class P2P {
  readonly events = new TypedEmitter<P2PEvents>()
  readonly gossip: Gossip
  readonly reqresp: ReqResp
  readonly peers: PeerManager
  private stopped = false

  private constructor(
    private readonly node: Libp2p<{ pubsub: GossipSub }>,
    opts: P2POptions,
    denied: DenyList,
    bootstrap: Multiaddr[],
    defaultPeer: Multiaddr | undefined,
    spam: SpamMeter,
  ) {
    this.gossip = new Gossip(
      node.services.pubsub,
      opts.net,
      opts.gossipHandlers,
      {
        rejected: (peer, topic, code) => {
          this.events.emit('gossip:rejected', { peerId: peer, topic, code })
          this.peers.countReject(peer)
        },
        badSubscriptions: (peer, reason) => this.peers.refuse(peer, reason),
        urgent: opts.gossipUrgent,
      },
      opts.log,
      spam,
    )
    this.reqresp = new ReqResp(node, opts.net, opts.reqrespHandlers, opts.localStatus)
    this.peers = new PeerManager(node, this.gossip, denied, {
      host: opts.host,
      bootstrap,
      defaultPeer,
      log: opts.log,
    })
  }

  static async create(opts: P2POptions): Promise<P2P> {
    const { port, bootstrap, defaultPeer } = await chooseListenPort(
      opts.host,
      opts.port,
      opts.bootstrap,
      opts.defaultPort,
    )
    const denied = new DenyList()
    const spam = new SpamMeter()
    const isDenied = (peer: PeerId) => denied.has(peer)
    const loopbackOnly = isLoopback(opts.host)
    let node: Libp2p<{ pubsub: GossipSub }>
    try {
      node = await createLibp2p({
        privateKey: opts.privateKey,
        ...(opts.libp2pLogger === undefined ? {} : { logger: opts.libp2pLogger }),
        addresses: { listen: [`/ip4/${opts.host}/tcp/${port}`] },
        transports: [tcp()],
        connectionEncrypters: [noise()],
        streamMuxers: [yamux()],
        peerDiscovery: [
          pubsubPeerDiscovery({ interval: DISCOVERY_INTERVAL_MS, topics: [discoveryTopic(opts.net)] }),
          ...(opts.mdns ? [mdns()] : []),
        ],
        connectionManager: {
          maxConnections: 200,
          // Half-open sockets (no Noise handshake yet) must not lock newcomers out: room for more
          // of them than libp2p's default 10. (The upgrade deadline stays libp2p's 10 s: 20 peers
          // on two cores need more than 3 s for some handshakes; tried, the mesh never formed.)
          maxIncomingPendingConnections: 64,
          // Per remote host per second. All local peers share 127.0.0.1, so not lower than this.
          inboundConnectionThreshold: 20,
        },
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
          pubsub: createGossipService(
            gossipServiceConfig({ net: opts.net, maxMessageBytes: opts.net.params.maxBlockBytes, spam }),
          ),
        },
      })
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EADDRINUSE')
        throw new PortInUseError(`port ${port} on ${opts.host} is already in use: pick another --port`)
      throw err
    }
    const p2p = new P2P(node, opts, denied, bootstrap, defaultPeer, spam)
    await p2p.start()
    return p2p
  }

  private async start(): Promise<void> {
    this.node.addEventListener('peer:connect', (evt) => this.events.emit('peer:connect', { peerId: evt.detail }))
    this.node.addEventListener('peer:disconnect', (evt) => {
      this.gossip.forgetPeer(evt.detail)
      this.events.emit('peer:disconnect', { peerId: evt.detail })
    })
    this.peers.events.on('peer:refused', (e) => this.events.emit('peer:refused', e))
    this.gossip.start()
    await this.reqresp.start()
    this.peers.start()
  }

  get peerId(): PeerId {
    return this.node.peerId
  }

  /** The libp2p node, for tests that reach into gossipsub; the node above never needs it. */
  get libp2p(): Libp2p<{ pubsub: GossipSub }> {
    return this.node
  }

  /** `again`: one of our records sent again (see Gossip.publish). */
  publish(topic: Topic, data: Uint8Array, again = false): Promise<void> {
    return this.gossip.publish(topic, data, again)
  }

  listenAddrs(): string[] {
    return this.node.getMultiaddrs().map((ma) => ma.toString())
  }

  connectedPeers(): PeerId[] {
    return this.node.getPeers()
  }

  /** Open connections: who, the address it listens on, which side dialled, and since when. */
  connections(): ConnectionInfo[] {
    return this.node.getConnections().map((c) => ({
      peerId: c.remotePeer.toString(),
      addr: (this.peers.listenAddr(c.remotePeer) ?? c.remoteAddr).toString(),
      direction: c.direction,
      since: c.timeline.open,
    }))
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    this.peers.stop()
    this.gossip.stop()
    await this.reqresp.stop().catch(() => {})
    await this.node.stop()
  }
}
