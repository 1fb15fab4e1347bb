import type { BlockNode } from '../core/chain.js'
import type { Peer } from '../node/peer.js'
import { blockViewOn } from '../node/views.js'
import { pct, shortId } from './format.js'

export interface TextOptions {
  /**
   * Where the one sync-progress line goes while catching up ("Syncing 1,234 / 5,000 ..."). The
   * caller redraws it in place (a terminal, the menu) or prints it; default: printed, at most every
   * 2 s.
   */
  readonly progress?: (line: string | undefined) => void
  /** A quiet "Synced: ..." line this often (ms) once caught up; 0: never. Default 60 s. */
  readonly statusEveryMs?: number
}

/** Blocks this many slots older than the clock arrive by sync: counted, not announced one by one. */
const CATCH_UP_SLOTS = 3
const PROGRESS_PRINT_MS = 2000

const num = (n: number) => n.toLocaleString('en-US')

/**
 * The human text of the chain's events: a block announced once when it joins this peer's chain
 * ("#38 won by you ..."), finality as it moves ("#36 final"), a reorg that takes a block of ours
 * away said in words, sync as one progress line, and a quiet status line once in a while.
 */
export class TextNarrator {
  private pendingFinal: BlockNode | undefined
  private syncing: { startMs: number; startHeight: number; lastPrintMs: number } | undefined
  private readonly statusTimer: NodeJS.Timeout | undefined

  constructor(
    private readonly peer: Peer,
    private readonly emit: (line: string) => void,
    private readonly opts: TextOptions = {},
  ) {
    const every = opts.statusEveryMs ?? 60_000
    if (every > 0) {
      this.statusTimer = setInterval(() => this.status(), every)
      this.statusTimer.unref()
    }
  }

  stop(): void {
    clearInterval(this.statusTimer)
  }

  private catchingUp(node: BlockNode): boolean {
    return node.slot < this.peer.currentSlot() - CATCH_UP_SLOTS
  }

  block(node: BlockNode): void {
    if (node.proposerHex === undefined) return
    if (this.catchingUp(node)) return
    this.endSync()
    const proposer = blockViewOn(this.peer, node).proposer ?? ''
    const row = this.peer.validators().find((r) => r.address === proposer)
    const mine = node.proposerHex === this.peer.publicKeyHex
    const share = row === undefined ? '' : ` (stake ${num(row.stake)}, ${pct(row.stakeShare)})`
    const readings = node.block?.readings.length ?? 0
    this.emit(
      `#${node.height} won by ${mine ? 'you' : shortId(proposer)}${share}, ${readings} reading${readings === 1 ? '' : 's'}`,
    )
  }

  /** A reorg: our blocks that left the chain are named; otherwise one short line. */
  reorg(from: BlockNode, depth: number): void {
    const lost: number[] = []
    let n: BlockNode | undefined = from
    for (let i = 0; i < depth && n !== undefined; i++) {
      if (n.proposerHex === this.peer.publicKeyHex) lost.push(n.height)
      n = n.parentHex === undefined ? undefined : this.peer.chain.get(n.parentHex)
    }
    if (lost.length > 0) {
      const which = lost.reverse().map((h) => `#${h}`)
      this.emit(
        `reorg: your block${lost.length === 1 ? '' : 's'} ${which.join(', ')} left the chain: another branch (depth ${depth}) won; readings in ${lost.length === 1 ? 'it' : 'them'} go in the next block`,
      )
    } else if (!this.catchingUp(from)) this.emit(`reorg: switched to another branch (depth ${depth})`)
  }

  /** Finality can move several blocks at once: one line for the highest. */
  finalized(node: BlockNode): void {
    const first = this.pendingFinal === undefined
    if (first || node.height > (this.pendingFinal?.height ?? 0)) this.pendingFinal = node
    if (!first) return
    queueMicrotask(() => {
      const top = this.pendingFinal
      this.pendingFinal = undefined
      if (top === undefined || this.catchingUp(top)) return
      this.emit(`#${top.height} final${top.proposerHex === this.peer.publicKeyHex ? ' (yours)' : ''}`)
    })
  }

  progress(height: number, target: number): void {
    const nowMs = Date.now()
    if (this.syncing === undefined) this.syncing = { startMs: nowMs, startHeight: height, lastPrintMs: 0 }
    const s = this.syncing
    const rate = ((height - s.startHeight) * 1000) / Math.max(1, nowMs - s.startMs)
    const line = `Syncing ${num(height)} / ${num(Math.max(height, target))} (${num(Math.round(rate))} blocks/s, ${this.peer.connectedPeers().length} peers)`
    if (this.opts.progress !== undefined) this.opts.progress(line)
    else if (nowMs - s.lastPrintMs >= PROGRESS_PRINT_MS) {
      s.lastPrintMs = nowMs
      this.emit(line)
    }
  }

  private endSync(): void {
    if (this.syncing === undefined) return
    this.syncing = undefined
    this.opts.progress?.(undefined)
    this.emit(`Synced to #${num(this.peer.head().height)}`)
  }

  /** "Synced: slot, head, final, peers" (or the sync line while still catching up). */
  statusLine(): string {
    const head = this.peer.head()
    return `Synced: slot ${num(this.peer.currentSlot())}, head #${num(head.height)}, final #${num(this.peer.finalized().height)}, ${this.peer.connectedPeers().length} peers`
  }

  private status(): void {
    if (this.syncing === undefined) this.emit(this.statusLine())
  }
}
