import type { Peer } from '../node/peer.js'
import { blockViewOn, readingJson, ref } from '../node/views.js'
import { pct, shortId } from './format.js'

export type Emit = (line: string) => void

/**
 * Subscribes to the peer's events and writes them: one JSON object per line (--json), or one
 * human line per event. Returns the unsubscribe function.
 */
export function attachOutput(peer: Peer, mode: 'json' | 'text', emit: Emit): () => void {
  const json = (event: string, data: Record<string, unknown>) =>
    emit(JSON.stringify({ event, time: new Date().toISOString(), ...data }))
  const offs: (() => void)[] = []
  const on: Peer['events']['on'] = (name, fn) => {
    const off = peer.events.on(name, fn)
    offs.push(off)
    return off
  }
  if (mode === 'json') {
    on('block', ({ node }) => json('block', blockViewOn(peer, node)))
    on('finalized', ({ node }) => json('finalized', ref(node)))
    on('head', ({ node }) => json('head', ref(node)))
    on('reorg', ({ from, to, depth }) => json('reorg', { from: ref(from), to: ref(to), depth }))
    on('won', ({ node }) => json('won', ref(node)))
    on('peer:connect', ({ peerId }) => json('peer:connect', { peerId }))
    on('peer:disconnect', ({ peerId }) => json('peer:disconnect', { peerId }))
    on('peer:refused', ({ peerId, reason }) => json('warning', { message: `refused peer ${peerId}: ${reason}` }))
    on('warning', ({ message }) => json('warning', { message }))
    on('submitted', ({ reading }) => json('reading', readingJson(reading)))
  } else {
    on('block', ({ node }) => {
      if (node.proposerHex === undefined) return
      const proposer = blockViewOn(peer, node).proposer ?? ''
      const row = peer.validators().find((r) => r.address === proposer)
      const who = node.proposerHex === peer.publicKeyHex ? 'you' : shortId(proposer)
      const readings = node.block?.readings.length ?? 0
      const share = row === undefined ? '' : ` (stake ${row.stake}, ${pct(row.stakeShare)})`
      emit(`#${node.height} won by ${who}${share}, ${readings} reading${readings === 1 ? '' : 's'}`)
    })
    on('won', ({ node }) => emit(`you won #${node.height}`))
    on('reorg', ({ from, to, depth }) => emit(`reorg: head #${from.height} -> #${to.height} (depth ${depth})`))
    on('peer:connect', ({ peerId }) =>
      emit(`peer joined ${shortId(peerId)} (${peer.connectedPeers().length} connected)`),
    )
    on('peer:disconnect', ({ peerId }) =>
      emit(`peer left ${shortId(peerId)} (${peer.connectedPeers().length} connected)`),
    )
    on('peer:refused', ({ peerId, reason }) => emit(`refused peer ${shortId(peerId)}: ${reason}`))
    on('warning', ({ message }) => emit(`warning: ${message}`))
  }
  return () => {
    for (const off of offs) off()
  }
}
