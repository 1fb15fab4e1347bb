import { addressOf } from '../core/crypto.js'
import type { Evidence } from '../core/records.js'
import { conflictOf } from '../core/validation.js'
import type { Peer } from '../node/peer.js'
import { blockViewOn, readingJson, ref, transferJson } from '../node/views.js'
import { shortId } from './format.js'
import { TextNarrator, type TextOptions } from './narrator.js'

export type Emit = (line: string) => void

const fromHexKey = (hex: string) => new Uint8Array(Buffer.from(hex, 'hex'))

/** What evidence proves, for people: the offence and the slots of the two blocks. */
function offence(e: Evidence): { offence: 'double' | 'surround'; slots: number[] } {
  return { offence: conflictOf(e.a, e.b) ?? 'double', slots: [e.a.slot, e.b.slot] }
}

/**
 * Subscribes to the peer's events and writes them: one JSON object per line (--json), or one
 * human line per event. Returns the unsubscribe function.
 */
export function attachOutput(peer: Peer, mode: 'json' | 'text', emit: Emit, opts: TextOptions = {}): () => void {
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
    on('transfer', ({ transfer }) => json('transfer', transferJson(transfer)))
    on('evidence', ({ evidence, offender }) =>
      json('evidence', { validator: addressOf(fromHexKey(offender)), ...offence(evidence), id: evidence.idHex }),
    )
    on('slashed', ({ evidence, offender, node }) =>
      json('slashed', { validator: addressOf(fromHexKey(offender)), ...offence(evidence), block: ref(node) }),
    )
  } else {
    const text = new TextNarrator(peer, emit, opts)
    on('block', ({ node }) => text.block(node))
    on('reorg', ({ from, depth }) => text.reorg(from, depth))
    on('finalized', ({ node }) => text.finalized(node))
    on('sync:progress', (p) => text.progress(p.height, p.target))
    on('peer:connect', ({ peerId }) =>
      emit(`peer joined ${shortId(peerId)} (${peer.connectedPeers().length} connected)`),
    )
    on('peer:disconnect', ({ peerId }) =>
      emit(`peer left ${shortId(peerId)} (${peer.connectedPeers().length} connected)`),
    )
    on('peer:refused', ({ peerId, reason }) => emit(`refused peer ${shortId(peerId)}: ${reason}`))
    on('warning', ({ message }) => emit(`warning: ${message}`))
    on('evidence', ({ evidence, offender }) => {
      const o = offence(evidence)
      emit(
        `evidence: validator ${shortId(addressOf(fromHexKey(offender)))} ${o.offence === 'double' ? `signed two blocks in slot ${o.slots[0]}` : `made a surround vote (slots ${o.slots.join(' and ')})`}; its votes no longer count here`,
      )
    })
    on('slashed', ({ offender, node }) =>
      emit(
        `slashed: validator ${shortId(addressOf(fromHexKey(offender)))} loses its stake for good${peer.config.ledger ? ', its bonded tokens burned' : ' and its balance'} (evidence final in #${node.height})`,
      ),
    )
    offs.push(() => text.stop())
  }
  return () => {
    for (const off of offs) off()
  }
}

/** Lines of events held while the peer starts (a long sync at start, in --json, is one per block). */
export const HELD_MAX = 100_000

/**
 * A peer's output from its first event (`attach` is PeerOptions.onCreated): held until `release`
 * (once the lines that open the output are out: `ready`, the header), then written as it comes.
 * Attached only once the start had returned, the events of the start were lost (the first
 * connections, blocks synced or imported meanwhile). At most HELD_MAX lines are held.
 */
export class HeldOutput {
  private held: string[] | undefined = []
  private dropped = 0
  private detach: (() => void) | undefined

  constructor(
    private readonly mode: 'json' | 'text',
    private readonly out: (line: string) => void,
    private readonly max = HELD_MAX,
  ) {}

  /** Listen to this peer (a profile that could not be opened is replaced by the next one tried). */
  readonly attach = (peer: Peer): void => {
    this.detach?.()
    if (this.held !== undefined) this.held.length = 0
    this.detach = attachOutput(peer, this.mode, (line) => {
      if (this.held === undefined) this.out(line)
      else if (this.held.length < this.max) this.held.push(line)
      else this.dropped++
    })
  }

  release(): void {
    const held = this.held ?? []
    this.held = undefined
    for (const line of held) this.out(line)
    if (this.dropped > 0) {
      const message = `${this.dropped} event(s) of the start not shown (more than ${this.max})`
      this.out(
        this.mode === 'json'
          ? JSON.stringify({ event: 'warning', time: new Date().toISOString(), message })
          : `warning: ${message}`,
      )
    }
  }
}
