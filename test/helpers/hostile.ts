import { RPC } from '@chainsafe/libp2p-gossipsub/message'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { identify } from '@libp2p/identify'
import type { PeerId, PrivateKey } from '@libp2p/interface'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { lpStream } from 'it-length-prefixed-stream'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { ChainConfig } from '../../src/core/params.js'
import { createGossipService, gossipServiceConfig } from '../../src/network/gossip.js'
import { ReqResp, type ReqRespHandlers, type Status } from '../../src/network/reqresp.js'

/**
 * A bare libp2p node that speaks our req/resp protocols with answers of the test's choosing, and
 * no gossip: what a hostile stranger with a free key can do. Stop it with `stop()`.
 */
export class HostileNode {
  readonly reqresp: ReqResp
  /** Requests served, by protocol. */
  readonly served: Record<keyof ReqRespHandlers, number> = { status: 0, 'blocks-by-range': 0, 'blocks-by-hash': 0 }

  private constructor(
    readonly node: Libp2p,
    net: ChainConfig,
    handlers: Partial<ReqRespHandlers>,
    status: () => Status,
  ) {
    const count = <K extends keyof ReqRespHandlers>(k: K) => {
      this.served[k]++
    }
    this.reqresp = new ReqResp(
      node,
      net,
      {
        status: (peer, theirs) => {
          count('status')
          return handlers.status?.(peer, theirs) ?? status()
        },
        'blocks-by-range': async (peer, req) => {
          count('blocks-by-range')
          return (await handlers['blocks-by-range']?.(peer, req)) ?? []
        },
        'blocks-by-hash': async (peer, req) => {
          count('blocks-by-hash')
          return (await handlers['blocks-by-hash']?.(peer, req)) ?? []
        },
      },
      status,
    )
  }

  static async start(
    net: ChainConfig,
    opts: { key?: PrivateKey; status: () => Status; handlers?: Partial<ReqRespHandlers> },
  ): Promise<HostileNode> {
    const node = await createLibp2p({
      privateKey: opts.key ?? (await generateKeyPair('Ed25519')),
      addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
      transports: [tcp()],
      connectionEncrypters: [noise()],
      streamMuxers: [yamux()],
      services: { identify: identify() },
    })
    const h = new HostileNode(node, net, opts.handlers ?? {}, opts.status)
    await h.reqresp.start()
    return h
  }

  get peerId(): PeerId {
    return this.node.peerId
  }

  async dial(addr: string): Promise<PeerId> {
    const conn = await this.node.dial(multiaddr(addr), { signal: AbortSignal.timeout(5000) })
    return conn.remotePeer
  }

  async stop(): Promise<void> {
    await this.reqresp.stop().catch(() => {})
    await this.node.stop()
  }
}

/** A status for `net` with the given fields (genesis hashes, no peers, no stake by default). */
export function fakeStatus(net: ChainConfig, over: Partial<Status> = {}): Status {
  return {
    networkId: net.id,
    headHash: net.id,
    headHeight: 0,
    finalizedHash: net.id,
    finalizedHeight: 0,
    peers: [],
    stake: 0,
    ...over,
  }
}

/**
 * A hostile gossip node: speaks our gossipsub dialect, without our topic guard, RPC limits or
 * scoring. Stopped by the cleanups it pushes itself onto.
 */
export async function gossipNode(net: ChainConfig, cleanups: (() => Promise<void>)[]) {
  const options = gossipServiceConfig({ net, maxMessageBytes: net.params.maxBlockBytes * 4 })
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      pubsub: createGossipService({
        ...options,
        allowedTopics: undefined,
        decodeRpcLimits: undefined,
        scoreParams: undefined,
        scoreThresholds: undefined,
      }),
    },
  })
  cleanups.push(async () => {
    await node.stop()
  })
  return node
}

const MESHSUB = ['/meshsub/1.2.0', '/meshsub/1.1.0']

/**
 * A spammer that writes gossipsub RPC frames itself, many messages per frame (what a determined
 * attacker would do: no gossipsub of its own to pay for, no per-message framing), and drains
 * whatever the victim's gossipsub sends it. Stopped by the cleanups it pushes itself onto.
 */
export async function rawGossip(net: ChainConfig, cleanups: (() => Promise<void>)[]) {
  const node = await createLibp2p({
    privateKey: await generateKeyPair('Ed25519'),
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: { identify: identify() },
  })
  await node.handle(MESHSUB, ({ stream }) => {
    void (async () => {
      for await (const _ of stream.source);
    })().catch(() => {})
  })
  // It answers status like a peer of the network at genesis (a peer that does not is hung up on).
  const status = () => fakeStatus(net)
  const reqresp = new ReqResp(
    node,
    net,
    { status: () => status(), 'blocks-by-range': async () => [], 'blocks-by-hash': async () => [] },
    status,
  )
  await reqresp.start()
  cleanups.push(async () => {
    await reqresp.stop().catch(() => {})
    await node.stop()
  })
  return {
    node,
    /**
     * A stream into `addr`'s gossipsub, subscribed to `topic`: `send` writes one frame of messages
     * (on `topic`, or on the frame's own).
     */
    async open(addr: string, topic: string) {
      const stream = await node.dialProtocol(multiaddr(addr), MESHSUB, { signal: AbortSignal.timeout(5000) })
      const lp = lpStream(stream)
      await lp.write(RPC.encode({ subscriptions: [{ subscribe: true, topic }], messages: [] }))
      return {
        frame: (datas: Uint8Array[], on = topic) =>
          RPC.encode({ subscriptions: [], messages: datas.map((data) => ({ topic: on, data })) }),
        send: (frame: Uint8Array) => lp.write(frame),
      }
    },
  }
}
