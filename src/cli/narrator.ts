import type { BlockNode } from '../core/chain.js'
import { addressOf } from '../core/crypto.js'
import { slotStart } from '../core/params.js'
import type { Peer } from '../node/peer.js'
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
  /** Blocks announced (bounded): a reorg names only these, and none is announced twice. */
  private readonly announced = new Set<string>()
  /** Blocks of a running slot waiting to be announced. */
  private readonly deferred = new Map<string, { node: BlockNode; timer: NodeJS.Timeout }>()
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
    for (const d of this.deferred.values()) clearTimeout(d.timer)
    this.deferred.clear()
  }

  private catchingUp(node: BlockNode): boolean {
    return node.slot < this.peer.currentSlot() - CATCH_UP_SLOTS
  }

  /**
   * A block joined our chain. One of the slot still running is announced when that slot is over
   * (and only if it is still on our chain then): candidates of one slot compete for a moment, and
   * "won by you" followed by "left the chain" a few ms later was noise.
   */
  block(node: BlockNode): void {
    if (node.proposerHex === undefined) return
    if (this.catchingUp(node)) return
    this.endSync()
    if (node.slot >= this.peer.currentSlot()) {
      const p = this.peer.config.params
      const settle = slotStart(p, node.slot + 1) + p.slotMs / 10 - Date.now()
      const timer = setTimeout(
        () => {
          this.deferred.delete(node.hashHex)
          if (this.onChain(node)) this.announce(node)
        },
        Math.max(0, settle),
      )
      timer.unref()
      this.deferred.set(node.hashHex, { node, timer })
      return
    }
    this.announce(node)
  }

  /** True while `node` is on the head chain (a final one was settled by `finalized`). */
  private onChain(node: BlockNode): boolean {
    let n: BlockNode | undefined = this.peer.head()
    while (n !== undefined && n.height > node.height) n = this.peer.chain.parentOf(n)
    return n?.hashHex === node.hashHex
  }

  private announce(node: BlockNode): void {
    if (this.announced.has(node.hashHex)) return
    this.announced.add(node.hashHex)
    if (this.announced.size > 256) this.announced.delete(this.announced.values().next().value as string)
    const proposer = node.block === undefined ? '' : addressOf(node.block.proposer)
    const row = this.peer.validators().find((r) => r.address === proposer)
    const mine = node.proposerHex === this.peer.publicKeyHex
    const share = row === undefined ? '' : ` (stake ${num(row.stake)}, ${pct(row.stakeShare)})`
    const readings = node.block?.readings.length ?? 0
    this.emit(
      `#${node.height} won by ${mine ? 'you' : shortId(proposer)}${share}, ${readings} reading${readings === 1 ? '' : 's'}`,
    )
  }

  /**
   * A reorg that takes announced blocks away: ours are named, others make one short line. A
   * candidate of the running slot that lost before it was announced is not news.
   */
  reorg(from: BlockNode, depth: number): void {
    const lost: number[] = []
    let announced = 0
    let n: BlockNode | undefined = from
    for (let i = 0; i < depth && n !== undefined; i++) {
      if (this.announced.has(n.hashHex)) {
        announced++
        if (n.proposerHex === this.peer.publicKeyHex) lost.push(n.height)
      }
      n = this.peer.chain.parentOf(n)
    }
    if (announced === 0) return
    if (lost.length > 0) {
      const which = lost.reverse().map((h) => `#${h}`)
      this.emit(
        `reorg: your block${lost.length === 1 ? '' : 's'} ${which.join(', ')} left the chain: another branch (depth ${depth}) won; readings in ${lost.length === 1 ? 'it' : 'them'} go in the next block`,
      )
    } else if (!this.catchingUp(from)) this.emit(`reorg: switched to another branch (depth ${depth})`)
  }

  /**
   * Finality can move several blocks at once: one line for the highest. A final block still
   * waiting for its slot to end is announced now (before its "final" line); its rivals lost.
   */
  finalized(node: BlockNode): void {
    for (const [hash, d] of this.deferred) {
      if (d.node.height > node.height) continue
      clearTimeout(d.timer)
      this.deferred.delete(hash)
      if (hash === node.hashHex) this.announce(d.node)
    }
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
