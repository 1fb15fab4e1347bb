import { type GossipSub, type GossipSubComponents, type GossipsubOpts, gossipsub } from '@chainsafe/libp2p-gossipsub'
import { createPeerScoreParams, createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score'
import { type Message, type PeerId, TopicValidatorResult } from '@libp2p/interface'
import { concatBytes, utf8 } from '../core/bytes.js'
import { sha256 } from '../core/crypto.js'
import type { Network } from '../core/params.js'
import { discoveryTopic, TOPICS, type Topic, topicName } from './names.js'

/**
 * All gossipsub wiring lives here, so the successor package (@libp2p/gossipsub on libp2p 3) can
 * replace it with a small change. Our records carry their own signatures: messages are unsigned
 * (StrictNoSign) and content-addressed, which also dedupes one candidate arriving from many peers.
 */

export type Verdict = 'accept' | 'ignore' | 'reject'
export type TopicHandlers = Record<Topic, (from: PeerId, data: Uint8Array) => Verdict>

export const SCORE_THRESHOLDS = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20,
}

/**
 * Counts lookups of topics outside our set. gossipsub consults `allowedTopics` for every
 * subscription of an RPC and then, synchronously, emits 'subscription-change' for that RPC's peer:
 * the handler reads the count there. A microtask resets it, so lookups made for messages (after the
 * event) are never blamed on the next peer.
 */
class TopicGuard extends Set<string> {
  foreign = 0
  private resetQueued = false

  override has(topic: string): boolean {
    const ok = super.has(topic)
    if (!ok) {
      this.foreign++
      if (!this.resetQueued) {
        this.resetQueued = true
        queueMicrotask(() => {
          this.foreign = 0
          this.resetQueued = false
        })
      }
    }
    return ok
  }
}

export interface GossipConfig {
  readonly net: Network
  /** Max gossip message size, bytes. */
  readonly maxMessageBytes: number
}

/** How often pubsub peer discovery re-broadcasts each peer's addresses. */
export const DISCOVERY_INTERVAL_MS = 2000

export function gossipServiceConfig(cfg: GossipConfig): { guard: TopicGuard; options: Partial<GossipsubOpts> } {
  const discovery = discoveryTopic(cfg.net)
  const guard = new TopicGuard([...TOPICS.map((t) => topicName(cfg.net, t)), discovery])
  const topicScore = createTopicScoreParams({
    topicWeight: 1,
    timeInMeshWeight: 0,
    firstMessageDeliveriesWeight: 0,
    meshMessageDeliveriesWeight: 0,
    meshFailurePenaltyWeight: 0,
    invalidMessageDeliveriesWeight: -20,
    invalidMessageDeliveriesDecay: 0.9,
  })
  const options: Partial<GossipsubOpts> = {
    globalSignaturePolicy: 'StrictNoSign',
    // Content-addressed ids. Peer discovery re-broadcasts the same bytes every interval, which a
    // content id would dedupe for the whole seen-cache TTL (a newcomer would learn nobody), so its
    // ids also carry the receive-time bucket of the broadcast interval.
    msgIdFn: (msg) =>
      msg.topic === discovery
        ? sha256(concatBytes(utf8(`${msg.topic}/${Math.floor(Date.now() / DISCOVERY_INTERVAL_MS)}`), msg.data))
        : sha256(concatBytes(utf8(msg.topic), msg.data)),
    ignoreDuplicatePublishError: true,
    allowPublishToZeroTopicPeers: true,
    emitSelf: false,
    // Small local networks: every peer in the mesh, a fast heartbeat.
    D: 6,
    Dlo: 3,
    Dhi: 12,
    heartbeatInterval: 700,
    fallbackToFloodsub: false,
    allowedTopics: guard,
    maxInboundDataLength: cfg.maxMessageBytes + 4096,
    decodeRpcLimits: {
      maxSubscriptions: 128,
      maxMessages: 256,
      maxIhaveMessageIDs: 5000,
      maxIwantMessageIDs: 5000,
      maxIdontwantMessageIDs: 5000,
      maxControlMessages: 256,
      maxPeerInfos: 16,
    },
    scoreParams: createPeerScoreParams({
      // All local peers share 127.0.0.1: co-location must not count against them.
      IPColocationFactorWeight: 0,
      behaviourPenaltyWeight: -10,
      behaviourPenaltyDecay: 0.9,
      topics: Object.fromEntries(TOPICS.map((t) => [topicName(cfg.net, t), topicScore])),
    }),
    scoreThresholds: SCORE_THRESHOLDS,
  }
  return { guard, options }
}

/** The gossipsub service factory, typed as the concrete GossipSub (we use its peer scores). */
export function createGossipService(options: Partial<GossipsubOpts>): (components: GossipSubComponents) => GossipSub {
  return gossipsub(options) as unknown as (components: GossipSubComponents) => GossipSub
}

const RESULT: Record<Verdict, TopicValidatorResult> = {
  accept: TopicValidatorResult.Accept,
  ignore: TopicValidatorResult.Ignore,
  reject: TopicValidatorResult.Reject,
}

export interface GossipEvents {
  /** A peer subscribed to a topic outside our set. */
  foreignTopic: (peer: PeerId, count: number) => void
}

/** Subscribes our topics and validates every message before gossipsub forwards it. */
export class Gossip {
  constructor(
    private readonly pubsub: GossipSub,
    private readonly net: Network,
    private readonly guard: TopicGuard,
    private readonly handlers: TopicHandlers,
    private readonly events: GossipEvents,
  ) {}

  start(): void {
    for (const t of TOPICS) {
      const name = topicName(this.net, t)
      this.pubsub.topicValidators.set(name, (from: PeerId, msg: Message) => RESULT[this.handlers[t](from, msg.data)])
      this.pubsub.subscribe(name)
    }
    this.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
  }

  stop(): void {
    this.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    for (const t of TOPICS) {
      const name = topicName(this.net, t)
      this.pubsub.topicValidators.delete(name)
      this.pubsub.unsubscribe(name)
    }
  }

  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId }>): void => {
    if (this.guard.foreign > 0) {
      const count = this.guard.foreign
      this.guard.foreign = 0
      this.events.foreignTopic(evt.detail.peerId, count)
    }
  }

  async publish(topic: Topic, data: Uint8Array): Promise<void> {
    await this.pubsub.publish(topicName(this.net, topic), data)
  }

  score(peer: PeerId): number {
    return this.pubsub.getScore(peer.toString())
  }

  meshPeers(topic: Topic): number {
    return this.pubsub.getMeshPeers(topicName(this.net, topic)).length
  }
}
