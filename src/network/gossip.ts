import { type GossipSub, type GossipSubComponents, type GossipsubOpts, gossipsub } from '@chainsafe/libp2p-gossipsub'
import { createPeerScoreParams, createTopicScoreParams } from '@chainsafe/libp2p-gossipsub/score'
import { type Message, type PeerId, TopicValidatorResult } from '@libp2p/interface'
import { concatBytes, utf8 } from '../core/bytes.js'
import { sha256 } from '../core/crypto.js'
import { PosError, type Verdict } from '../core/errors.js'
import type { ChainConfig } from '../core/params.js'
import type { Logger } from '../util/logger.js'
import { GossipQueues } from './gossip-queues.js'
import { discoveryTopic, TOPICS, type Topic, topicName } from './topics.js'

/**
 * All gossipsub wiring lives here, so the successor package (@libp2p/gossipsub on libp2p 3) can
 * replace it with a small change. Our records carry their own signatures: messages are unsigned
 * (StrictNoSign) and content-addressed, which also dedupes one candidate arriving from many peers.
 */

/**
 * A topic's handler: decodes and validates a message and hands it to the chain. It returns
 * 'accept' or 'ignore', or throws a PosError whose action says IGNORE or REJECT; the one adapter
 * below (`verdictOf`) turns either into the gossipsub result, a count and a debug line.
 */
export type GossipHandler = (from: PeerId, data: Uint8Array) => Verdict
export type GossipHandlers = Record<Topic, GossipHandler>

export interface GossipStats {
  accepted: number
  ignored: number
  /** Rejections by error code. */
  rejected: Map<string, number>
}

export function emptyGossipStats(): Record<Topic, GossipStats> {
  return Object.fromEntries(TOPICS.map((t) => [t, { accepted: 0, ignored: 0, rejected: new Map() }])) as Record<
    Topic,
    GossipStats
  >
}

export interface GossipCallbacks {
  /** A message was rejected: its sender is accountable (reject counting, events). */
  rejected: (peer: PeerId, topic: Topic, code: string) => void
  /** A peer subscribed to topics outside our set, or changed subscriptions too often. */
  badSubscriptions: (peer: PeerId, reason: string) => void
  /** Whether a message goes ahead of its topic's others in the validation queue (`GossipQueues`). */
  urgent?: (topic: Topic, data: Uint8Array) => boolean
}

/**
 * The gossip verdict adapter (as Lodestar's gossipValidatorFn): run the handler, map a typed
 * error to its action, count the result per topic and code, and say why at debug level. An error
 * that is not a PosError is a bug in our code, not the sender's fault: logged, and ignored.
 */
export function verdictOf(
  topic: Topic,
  handler: GossipHandler,
  from: PeerId,
  data: Uint8Array,
  stats: GossipStats,
  log: Logger,
): { verdict: Verdict; code?: string } {
  let verdict: Verdict
  let code: string | undefined
  try {
    verdict = handler(from, data)
  } catch (err) {
    if (!(err instanceof PosError)) {
      log('error', `bug: ${topic} message from ${from} threw ${(err as Error).stack ?? String(err)}`)
      stats.ignored++
      return { verdict: 'ignore' }
    }
    verdict = err.action === 'REJECT' ? 'reject' : 'ignore'
    code = err.code
    log('debug', `${verdict} ${topic} from ${from}: ${err.message}`)
  }
  if (verdict === 'accept') stats.accepted++
  else if (verdict === 'ignore') stats.ignored++
  else {
    const c = code ?? 'UNSPECIFIED'
    stats.rejected.set(c, (stats.rejected.get(c) ?? 0) + 1)
  }
  return { verdict, code }
}

/**
 * Ignored messages that still cost their deliverer score: valid records we cannot take because
 * their author is over its pending quota, or the pool is full of others' (a spamming author), or
 * a new key's stake while the stake table is full (a flood of fresh keys), or a reading its
 * author cannot pay the fee for (a genesis network with a reading fee).
 */
export const SPAM_CODES: ReadonlySet<string> = new Set(['AUTHOR_QUOTA', 'POOL_FULL', 'TABLE_FULL', 'FEE_UNPAID'])

/**
 * Gossip score for spam (gossipsub's application-specific score, P5): a decaying count per peer
 * of SPAM_CODES deliveries (halved every `halfLifeMs`); beyond `tolerance` each one costs a point,
 * down to -200 (gossipsub graylists below -80: the spammer's RPCs are then ignored). The tolerance
 * keeps an honest relay safe: it forwards only what it accepted itself under the same quota, so
 * it trips ours only in the moments the two pools differ.
 */
export class SpamMeter {
  private readonly counts = new Map<string, { n: number; at: number }>()

  constructor(
    private readonly now: () => number = Date.now,
    private readonly tolerance = 256,
    private readonly halfLifeMs = 10_000,
    private readonly maxPeers = 10_000,
  ) {}

  private current(peer: string): number {
    const c = this.counts.get(peer)
    return c === undefined ? 0 : c.n * 0.5 ** ((this.now() - c.at) / this.halfLifeMs)
  }

  add(peer: string): void {
    const n = this.current(peer) + 1
    this.counts.delete(peer)
    if (this.counts.size >= this.maxPeers) this.counts.delete(this.counts.keys().next().value as string)
    this.counts.set(peer, { n, at: this.now() })
  }

  /** The application score of a peer: 0, or minus its spam beyond the tolerance (at most -200). */
  score(peer: string): number {
    const over = Math.min(200, Math.max(0, this.current(peer) - this.tolerance))
    return over === 0 ? 0 : -over
  }
}

export const SCORE_THRESHOLDS = {
  gossipThreshold: -10,
  publishThreshold: -50,
  graylistThreshold: -80,
  acceptPXThreshold: 10,
  opportunisticGraftThreshold: 20,
}

export interface GossipConfig {
  readonly net: ChainConfig
  /** Max gossip message size, bytes. */
  readonly maxMessageBytes: number
  /** The spam part of each peer's score. */
  readonly spam?: SpamMeter
}

/** Topic names as UTF-8, computed once: every message's id hashes its topic (10,000 a second under a spam). */
const topicBytes = new Map<string, Uint8Array>()
const TOPIC_BYTES_MAX = 64

function topicUtf8(topic: string): Uint8Array {
  let bytes = topicBytes.get(topic)
  if (bytes === undefined) {
    bytes = utf8(topic)
    if (topicBytes.size < TOPIC_BYTES_MAX) topicBytes.set(topic, bytes)
  }
  return bytes
}

/** A record's gossip message id: the hash of its topic and bytes (content-addressed). */
export function recordMessageId(topic: string, data: Uint8Array): Uint8Array {
  return sha256(concatBytes(topicUtf8(topic), data))
}

/** How often pubsub peer discovery re-broadcasts each peer's addresses. */
export const DISCOVERY_INTERVAL_MS = 2000

export function gossipServiceConfig(cfg: GossipConfig): Partial<GossipsubOpts> {
  const discovery = discoveryTopic(cfg.net)
  const allowed = new Set([...TOPICS.map((t) => topicName(cfg.net, t)), discovery])
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
        : recordMessageId(msg.topic, msg.data),
    // A peer's next RPC is read once the last one is handed to validation and the peer has room
    // to read ahead (`Gossip.paceReading`): a peer that sends faster than we validate is slowed
    // down by TCP (backpressure) instead of buffered here, and each message waits its turn in
    // `GossipQueues`, so one peer's backlog never holds the event loop.
    awaitRpcHandler: true,
    awaitRpcMessageHandler: false,
    ignoreDuplicatePublishError: true,
    allowPublishToZeroTopicPeers: true,
    emitSelf: false,
    // Small local networks: every peer in the mesh, a fast heartbeat.
    D: 6,
    Dlo: 3,
    Dhi: 12,
    heartbeatInterval: 700,
    fallbackToFloodsub: false,
    // gossipsub keeps subscriptions to topics outside this set nowhere (GHSA-4f8r-922h-2vgv).
    allowedTopics: allowed,
    maxInboundDataLength: cfg.maxMessageBytes + 4096,
    // Subscriptions are bounded by maxInboundDataLength rather than a low count: an RPC with too
    // many would be dropped silently by the decoder, while a decoded one reaches our
    // subscription-change handler, which refuses a peer that asks for topics outside our set.
    decodeRpcLimits: {
      maxSubscriptions: 20_000,
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
      // Mild: broken IWANT promises happen to honest peers on a loaded machine.
      behaviourPenaltyWeight: -1,
      behaviourPenaltyDecay: 0.9,
      appSpecificScore: (peer) => cfg.spam?.score(peer) ?? 0,
      appSpecificWeight: 1,
      topics: Object.fromEntries(TOPICS.map((t) => [topicName(cfg.net, t), topicScore])),
    }),
    scoreThresholds: SCORE_THRESHOLDS,
  }
  return options
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

/** Honest peers subscribe to our four topics once per connection; a few more changes are fine. */
const MAX_SUBSCRIPTION_RPCS = 32

/** Subscribes our topics and validates every message before gossipsub forwards it. */
export class Gossip {
  readonly stats = emptyGossipStats()
  /** Every message waits here for its validation, in priority order, a turn at a time. */
  readonly queues = new GossipQueues()

  constructor(
    private readonly pubsub: GossipSub,
    private readonly net: ChainConfig,
    private readonly handlers: GossipHandlers,
    private readonly callbacks: GossipCallbacks,
    private readonly log: Logger,
    private readonly spam?: SpamMeter,
  ) {}

  start(): void {
    for (const t of TOPICS) {
      const name = topicName(this.net, t)
      const validate = (from: PeerId, msg: Message): TopicValidatorResult => {
        const { verdict, code } = verdictOf(t, this.handlers[t], from, msg.data, this.stats[t], this.log)
        if (t === 'candidates' && verdict === 'accept') this.blockSenders.add(from.toString())
        if (verdict === 'reject') this.callbacks.rejected(from, t, code ?? 'UNSPECIFIED')
        else if (code !== undefined && SPAM_CODES.has(code)) this.spam?.add(from.toString())
        return RESULT[verdict]
      }
      this.pubsub.topicValidators.set(name, (from: PeerId, msg: Message) =>
        this.queues.validate(t, this.callbacks.urgent?.(t, msg.data) ?? false, () => validate(from, msg), {
          peer: from.toString(),
          bytes: msg.data.byteLength,
        }),
      )
      this.pubsub.subscribe(name)
    }
    this.pubsub.addEventListener('subscription-change', this.onSubscriptionChange)
    this.paceReading()
  }

  /**
   * gossipsub reads a peer's next RPC once `handleReceivedRpc` resolves (`awaitRpcHandler`), which
   * hands the messages to their validators without waiting for them (`awaitRpcMessageHandler`
   * off); it now also waits until that peer has room to read ahead (`GossipQueues.room`; only a
   * peer that delivers blocks reads ahead, `blockSenders`). So a block is read behind at most
   * `READ_AHEAD` of its sender's messages and validated first, and a sender faster than our
   * validation is still slowed down by TCP. (Wraps a private method of gossipsub 14, as
   * `gossipWorks` reads its private state; without it nothing would pace a stream, so its absence
   * stops the peer.)
   */
  private paceReading(): void {
    const internals = this.pubsub as unknown as { handleReceivedRpc?: (from: PeerId, rpc: unknown) => Promise<void> }
    const handle = internals.handleReceivedRpc
    if (typeof handle !== 'function') throw new Error('this gossipsub has no handleReceivedRpc to pace its streams')
    this.unpace = () => {
      internals.handleReceivedRpc = handle
    }
    internals.handleReceivedRpc = async (from: PeerId, rpc: unknown) => {
      await handle.call(this.pubsub, from, rpc)
      const peer = from.toString()
      await this.queues.room(peer, this.blockSenders.has(peer))
    }
  }

  private unpace = () => {}

  /**
   * Peers that delivered a valid block on this connection: read ahead (a block overtakes what
   * they sent before it). Any other peer is read one RPC at a time, its messages validated before
   * the next is read: a stream that carries no blocks gains nothing from reading ahead, and a
   * spammer's read ahead cost the peer it floods memory (the 1,000-key reading spam: 201-222 MB
   * against 181-184).
   */
  private readonly blockSenders = new Set<string>()

  stop(): void {
    this.unpace()
    this.queues.close()
    this.pubsub.removeEventListener('subscription-change', this.onSubscriptionChange)
    for (const t of TOPICS) {
      const name = topicName(this.net, t)
      this.pubsub.topicValidators.delete(name)
      this.pubsub.unsubscribe(name)
    }
  }

  private readonly subscriptionRpcs = new Map<string, number>()

  /**
   * gossipsub reports a subscription RPC with the topics outside `allowedTopics` already removed,
   * so an empty list means every topic asked for was foreign. (An RPC mixing ours and foreign ones
   * is filtered without a penalty: the foreign part is never stored either way.)
   */
  private readonly onSubscriptionChange = (evt: CustomEvent<{ peerId: PeerId; subscriptions: unknown[] }>): void => {
    const { peerId, subscriptions } = evt.detail
    const key = peerId.toString()
    const n = (this.subscriptionRpcs.get(key) ?? 0) + 1
    if (this.subscriptionRpcs.size > 10_000) this.subscriptionRpcs.clear()
    this.subscriptionRpcs.set(key, n)
    if (subscriptions.length === 0)
      this.callbacks.badSubscriptions(peerId, "subscribed to topics outside this network's set")
    else if (n > MAX_SUBSCRIPTION_RPCS) this.callbacks.badSubscriptions(peerId, `changed its subscriptions ${n} times`)
  }

  forgetPeer(peer: PeerId): void {
    this.subscriptionRpcs.delete(peer.toString())
    this.blockSenders.delete(peer.toString())
  }

  /**
   * Publish one of our records. `again`: a record of ours that is still not in the chain, sent
   * again. gossipsub publishes nothing its seen cache holds (two minutes), so a record first
   * published while no peer was subscribed (just after start, or cut off) would reach nobody for
   * two minutes however often it is sent again: forget it there first. A peer that already has it
   * drops the copy as a duplicate, unvalidated.
   */
  async publish(topic: Topic, data: Uint8Array, again = false): Promise<void> {
    const name = topicName(this.net, topic)
    if (again) {
      // Private state of gossipsub 14 (as gossipWorks below): both caches are maps by id string.
      // Deleting before the publish puts it back keeps their insertion order, which pruning needs.
      const internals = this.pubsub as unknown as {
        msgIdToStrFn?: (id: Uint8Array) => string
        seenCache?: { entries?: Map<string, unknown> }
        publishedMessageIds?: { entries?: Map<string, unknown> }
      }
      const id = internals.msgIdToStrFn?.(recordMessageId(name, data))
      if (id !== undefined) {
        internals.seenCache?.entries?.delete(id)
        internals.publishedMessageIds?.entries?.delete(id)
      }
    }
    await this.pubsub.publish(name, data)
  }

  meshPeers(topic: Topic): number {
    return this.pubsub.getMeshPeers(topicName(this.net, topic)).length
  }

  /**
   * Whether gossip with a connected peer works: gossipsub knows the peer, it is subscribed to our
   * candidates topic, and our outbound stream to it is open. gossipsub 14 keeps a broken outbound
   * stream (reset, or a write that failed during a network cut) in its registry and never opens
   * another while the connection lives, and drops a peer whose inbound stream failed without
   * closing the connection: either way that peer would get nothing from us until it reconnects.
   * (Reads private state of gossipsub 14; the successor package fixes the first case itself.)
   */
  gossipWorks(peer: PeerId): boolean {
    const id = peer.toString()
    const internals = this.pubsub as unknown as {
      peers: Map<string, unknown>
      streamsOutbound: Map<string, { rawStream?: { status?: string } }>
    }
    if (!internals.peers.has(id)) return false
    if (internals.streamsOutbound.get(id)?.rawStream?.status !== 'open') return false
    return this.pubsub.getSubscribers(topicName(this.net, 'candidates')).some((p) => p.equals(peer))
  }
}
