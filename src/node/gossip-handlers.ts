import { toHex } from '../core/bytes.js'
import {
  decodeBlock,
  decodeEvidence,
  decodeReading,
  decodeStake,
  decodeTransfer,
  peekReadingAuthor,
} from '../core/records.js'
import type { GossipHandler, GossipHandlers } from '../network/gossip.js'
import type { Topic } from '../network/topics.js'
import type { ChainService } from './chain-service.js'
import type { ClockMonitor } from './clock-monitor.js'

/**
 * One handler per gossip topic: decode the untrusted bytes, hand the record to the chain. Each
 * returns accept/ignore or throws a typed error; network/gossip.ts turns that into the verdict.
 * A new topic: add it to network/topics.ts, and the compiler asks for its handler here.
 */
export function gossipHandlers(svc: ChainService, clock?: ClockMonitor): GossipHandlers {
  const config = svc.config
  return {
    candidates: (from, data) => {
      const block = decodeBlock(config, data)
      clock?.sample(block.slot)
      return svc.receiveBlock(block, { source: from.toString() })
    },
    stakes: (_from, data) => svc.receiveStake(decodeStake(data)),
    readings: (_from, data) => svc.receiveReading(decodeReading(data)),
    evidence: (_from, data) => svc.receiveEvidence(decodeEvidence(data)),
    transfers: (_from, data) => svc.receiveTransfer(decodeTransfer(data)),
  }
}

/**
 * Which received messages go ahead of their topic's others in the validation queue
 * (network/gossip-queues.ts): readings whose author holds counted stake at our head. Under a
 * flood of readings from fresh keys a validator's reading is still validated, relayed and
 * proposed at once.
 */
export function urgentGossip(svc: ChainService): (topic: Topic, data: Uint8Array) => boolean {
  return (topic, data) => {
    if (topic !== 'readings') return false
    const author = peekReadingAuthor(data)
    return author !== undefined && (svc.chain.head.state.stakes.get(toHex(author))?.counted ?? 0) > 0
  }
}

/** A test seam: wrap each topic's handler (e.g. to drop a topic's messages). */
export type GossipHandlerWrapper = (topic: Topic, handler: GossipHandler) => GossipHandler

export function wrapHandlers(handlers: GossipHandlers, wrap: GossipHandlerWrapper | undefined): GossipHandlers {
  if (wrap === undefined) return handlers
  return {
    candidates: wrap('candidates', handlers.candidates),
    stakes: wrap('stakes', handlers.stakes),
    readings: wrap('readings', handlers.readings),
    evidence: wrap('evidence', handlers.evidence),
    transfers: wrap('transfers', handlers.transfers),
  }
}
