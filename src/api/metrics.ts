import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { slotStart } from '../core/params.js'
import type { Peer } from '../node/peer.js'

/**
 * Prometheus metrics of one peer: libp2p's own (through @libp2p/prometheus-metrics, which must be
 * handed to libp2p at creation, hence `libp2p()` before the peer starts) and ours, read from the
 * peer's state at scrape time or counted from its events.
 */
export class PeerMetrics {
  readonly registry = new Registry()
  private peer: Peer | undefined
  private readonly offs: (() => void)[] = []
  private readonly won: Counter
  private readonly reorgs: Counter
  private readonly reorgDepth: Histogram
  private readonly propagation: Histogram

  constructor() {
    const registers = [this.registry]
    const self = this
    new Gauge({
      name: 'pos_peer_head_height',
      help: 'Height of the head block',
      registers,
      collect() {
        if (self.peer !== undefined) this.set(self.peer.head().height)
      },
    })
    new Gauge({
      name: 'pos_peer_finalized_height',
      help: 'Height of the last finalized block',
      registers,
      collect() {
        if (self.peer !== undefined) this.set(self.peer.finalized().height)
      },
    })
    new Gauge({
      name: 'pos_peer_slot',
      help: 'Current slot',
      registers,
      collect() {
        if (self.peer !== undefined) this.set(self.peer.currentSlot())
      },
    })
    new Gauge({
      name: 'pos_peer_connected_peers',
      help: 'Connected libp2p peers',
      registers,
      collect() {
        if (self.peer !== undefined) this.set(self.peer.connectedPeers().length)
      },
    })
    new Gauge({
      name: 'pos_peer_stake',
      help: 'Stake this peer runs with',
      registers,
      collect() {
        if (self.peer !== undefined) this.set(self.peer.stake)
      },
    })
    new Counter({
      name: 'pos_peer_gossip_messages_total',
      help: 'Gossip messages received, by topic and result (accepted, ignored, rejected by reason)',
      labelNames: ['topic', 'result', 'reason'],
      registers,
      collect() {
        if (self.peer === undefined) return
        this.reset()
        for (const [topic, st] of Object.entries(self.peer.gossipStats())) {
          this.inc({ topic, result: 'accepted', reason: '' }, st.accepted)
          this.inc({ topic, result: 'ignored', reason: '' }, st.ignored)
          for (const [reason, n] of st.rejected) this.inc({ topic, result: 'rejected', reason }, n)
        }
      },
    })
    this.won = new Counter({
      name: 'pos_peer_blocks_won_total',
      help: 'Own candidates that joined the head chain',
      registers,
    })
    this.reorgs = new Counter({ name: 'pos_peer_reorgs_total', help: 'Head changes to another branch', registers })
    this.reorgDepth = new Histogram({
      name: 'pos_peer_reorg_depth',
      help: 'Blocks of the old head chain left by a reorg',
      buckets: [1, 2, 3, 5, 8, 13, 21],
      registers,
    })
    this.propagation = new Histogram({
      name: 'pos_peer_candidate_delay_seconds',
      help: "Time from a candidate's slot start to its arrival here (other peers' candidates)",
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    })
  }

  /** The libp2p metrics implementation to pass to the peer (PeerOptions.metrics). */
  libp2p() {
    return prometheusMetrics({ registry: this.registry, collectDefaultMetrics: true })
  }

  attach(peer: Peer): void {
    this.peer = peer
    const params = peer.config.params
    this.offs.push(
      peer.events.on('won', () => this.won.inc()),
      peer.events.on('reorg', ({ depth }) => {
        this.reorgs.inc()
        this.reorgDepth.observe(depth)
      }),
      peer.events.on('candidate', ({ node, local }) => {
        const delay = Date.now() - slotStart(params, node.slot)
        // Blocks from range sync or parent fetches are old: not propagation.
        if (local || delay > 10 * params.slotMs) return
        this.propagation.observe(Math.max(0, delay) / 1000)
      }),
    )
  }

  detach(): void {
    for (const off of this.offs.splice(0)) off()
    this.peer = undefined
  }

  text(): Promise<string> {
    return this.registry.metrics()
  }

  get contentType(): string {
    return this.registry.contentType
  }
}
