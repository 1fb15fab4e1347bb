import { toHex } from './bytes.js'
import { BlockError } from './errors.js'
import { type CheckpointRef, checkpointRef, Justification } from './ffg.js'
import { FinalReadings } from './final-readings.js'
import { compareEntrants, ticketFor } from './lottery.js'
import type { ChainConfig } from './params.js'
import { type Block, type BlockHeader, type Checkpoint, createEvidence, type Evidence, headerOf } from './records.js'
import { activeStake, type ChainState, genesisState } from './state.js'
import {
  blockReadingWindow,
  conflictOf,
  PARTICIPATION_DEPTH,
  participates,
  SOURCE_DEPTH,
  validateBlock,
} from './validation.js'

/** A block in the tree of not-yet-final blocks (the root is the last finalized block). */
export interface BlockNode {
  /** Undefined only for the genesis root. */
  readonly block: Block | undefined
  readonly hash: Uint8Array
  readonly hashHex: string
  readonly parentHex: string | undefined
  readonly height: number
  readonly slot: number
  /** Post-state: stake table and accounts after this block. */
  readonly state: ChainState
  /** Proposer weight: lottery weight and vote weight. */
  readonly weight: number
  /** -ln(u) of the proposer on the parent, fixed point. */
  readonly ticket: bigint
  readonly proposerHex: string | undefined
  readonly children: Set<string>
  readonly readingIds: ReadonlySet<string>
}

/** A validator's latest candidate: a vote for that candidate's parent. */
export interface Vote {
  readonly slot: number
  readonly candidate: string
  readonly target: string
  readonly weight: number
}

export interface ChainRoot {
  readonly block: Block | undefined
  readonly hash: Uint8Array
  readonly height: number
  readonly slot: number
  readonly state: ChainState
  /** The epoch of the finalized checkpoint (root block, epoch); 0 at genesis. */
  readonly epoch: number
}

export function genesisRoot(net: ChainConfig): ChainRoot {
  return { block: undefined, hash: net.id, height: 0, slot: 0, state: genesisState(net), epoch: 0 }
}

export interface ImportResult {
  readonly node: BlockNode
  readonly oldHead: BlockNode
  readonly head: BlockNode
  /** Blocks that joined the head chain, lowest first (after a reorg: the whole new branch). */
  readonly canonical: readonly BlockNode[]
  /** 0 unless the old head is not an ancestor of the new one. */
  readonly reorgDepth: number
  /** Blocks that became final, lowest first. */
  readonly finalized: readonly BlockNode[]
  /** Hashes of blocks dropped because they do not descend from the new finalized block. */
  readonly pruned: readonly string[]
  /** The finalized checkpoint after this import (its block is the root). */
  readonly finalizedCheckpoint: CheckpointRef<BlockNode>
  /** True when this import moved the finalized checkpoint (a new root, or the root at a later epoch). */
  readonly finalityMoved: boolean
  /** Evidence this import revealed (the block's proposer broke a slashing rule). */
  readonly evidence: readonly Evidence[]
}

/** A block the user vouches for (`--checkpoint`): a chain without it at its height is refused. */
export interface TrustedCheckpoint {
  readonly height: number
  readonly hashHex: string
}

export interface ChainOptions {
  readonly root?: ChainRoot
  readonly checkpoint?: TrustedCheckpoint
  /** Ids of the readings in the finalized chain still in the time window; the chain adds to it. */
  readonly finalReadings?: FinalReadings
  /** The final blocks just below the root, lowest first (see RECENT_FINAL). */
  readonly recentFinal?: readonly RecentFinal[]
}

/**
 * Final blocks below the root remembered by hash: enough that "is this block on the chain?" for a
 * carried vote's target (at most PARTICIPATION_DEPTH + 1 blocks back) and for a block's FFG source
 * (at most SOURCE_DEPTH back) has the same answer on every peer, whatever its finalized height. No
 * lookup reaches further, so no more are kept (a restart reads each one's block for its slot).
 */
export const RECENT_FINAL = Math.max(SOURCE_DEPTH, PARTICIPATION_DEPTH + 1)

/** A final block below the root, as the chain remembers it. */
export interface RecentFinal {
  readonly hashHex: string
  readonly height: number
  readonly slot: number
}

/** A proposer carries a validator's vote when none was recorded in this many blocks of its chain. */
const PARTICIPATION_REFRESH = 8

/** Headers kept per proposer for equivocation checks (its last blocks), and proposers kept. */
const SEEN_HEADERS_PER_PROPOSER = 64
const SEEN_PROPOSERS = 4096

/** Where a block's FFG source is in the tree (see ValidationContext.sourceCheck). */
type SourceWhere = { where: 'ok'; node: BlockNode } | { where: 'bad' | 'stale' | 'unknown' }

/**
 * Block tree, latest votes, fork choice (LMD-GHOST from the highest justified checkpoint, with
 * candidates as votes and the lottery as tie-break), Casper FFG finality (`ffg.ts`) and
 * equivocation detection. Pure: time is passed in, nothing is stored here.
 * (Over 300 lines, one concern: the tree and the rules that read it.)
 */
export class Chain {
  readonly net: ChainConfig
  readonly finalReadings: FinalReadings
  private readonly nodes = new Map<string, BlockNode>()
  private readonly votes = new Map<string, Vote>()
  private rootNode: BlockNode
  private headNode: BlockNode
  private readonly checkpoint: TrustedCheckpoint | undefined
  private readonly ffg: Justification<BlockNode>
  /** Validators we hold evidence against: their votes no longer count in our fork choice. */
  private readonly excluded = new Set<string>()
  /**
   * The signed headers of each proposer's latest blocks (imported, final or pruned alike), to
   * find two that break a slashing rule, also against blocks of a chain we never import.
   */
  private readonly seenHeaders = new Map<string, BlockHeader[]>()
  /** The last RECENT_FINAL final blocks below the root (by hash hex), oldest first. */
  private readonly recentFinal: Map<string, RecentFinal>

  constructor(net: ChainConfig, opts: ChainOptions = {}) {
    this.net = net
    const r = opts.root ?? genesisRoot(net)
    this.finalReadings = opts.finalReadings ?? new FinalReadings()
    this.recentFinal = new Map((opts.recentFinal ?? []).map((f) => [f.hashHex, f]))
    this.checkpoint = opts.checkpoint
    this.rootNode = {
      block: r.block,
      hash: r.hash,
      hashHex: toHex(r.hash),
      parentHex: r.block === undefined ? undefined : toHex(r.block.parent),
      height: r.height,
      slot: r.slot,
      state: r.state,
      weight: 0,
      ticket: 0n,
      proposerHex: r.block === undefined ? undefined : toHex(r.block.proposer),
      children: new Set(),
      readingIds: new Set(),
    }
    this.nodes.set(this.rootNode.hashHex, this.rootNode)
    this.headNode = this.rootNode
    this.ffg = new Justification(net.params, checkpointRef(this.rootNode, r.epoch))
  }

  /** The highest justified checkpoint (fork choice starts at its block). */
  justified(): CheckpointRef<BlockNode> {
    return this.ffg.best()
  }

  /** The finalized checkpoint: the root block and the epoch it was finalized at. */
  finalizedCheckpoint(): CheckpointRef<BlockNode> {
    return this.ffg.finalized()
  }

  /**
   * The FFG source for a vote at `slot` on `base`: the highest justified checkpoint of an earlier
   * epoch on base's chain.
   */
  sourceFor(slot: number, base: BlockNode): Checkpoint {
    const c = this.ffg.sourceFor(slot, (n) => this.isAncestor(n, base))
    return { hash: c.node.hash, epoch: c.epoch }
  }

  /**
   * The signed headers of the votes that justified `source` in our view, at most
   * maxVotesPerBlock, blocks of our own chain included: a block carries the whole proof of its
   * source, so its state can check it (`linkProven` in core/validation.ts).
   */
  votesFor(source: Checkpoint): BlockHeader[] {
    const out: BlockHeader[] = []
    for (const hex of this.ffg.proof(`${toHex(source.hash)}@${source.epoch}`)) {
      const node = this.nodes.get(hex)
      const b = node?.block ?? this.headerVotes.get(hex)
      if (b !== undefined && out.length < this.net.params.maxVotesPerBlock) out.push(headerOf(b))
    }
    return out
  }

  /**
   * Votes to carry for the inactivity leak (core/validation.ts `participates`): for each validator
   * counted at `base` with no vote recorded in its last PARTICIPATION_REFRESH blocks, its latest
   * vote that takes part in a block of `slot` on `base` with `source`; at most `room`, latest first.
   */
  participationVotes(base: BlockNode, slot: number, source: Checkpoint, room: number): BlockHeader[] {
    if (room <= 0) return []
    const block = { height: base.height + 1, slot, source }
    const onChain = (hex: string) => this.onChainOf(hex, base)
    const latest = new Map<string, BlockHeader>()
    const consider = (h: BlockHeader) => {
      const key = toHex(h.proposer)
      const e = base.state.stakes.get(key)
      if (e === undefined || (e.lastVote ?? 0) > base.height - PARTICIPATION_REFRESH) return
      if (activeStake(this.net.params, base.state, key, slot) === 0 || !participates(h, block, onChain)) return
      const prev = latest.get(key)
      if (prev === undefined || h.slot > prev.slot) latest.set(key, h)
    }
    for (const n of this.nodes.values()) if (n.block !== undefined) consider(headerOf(n.block))
    for (const h of this.headerVotes.values()) consider(h)
    return [...latest.values()].sort((a, b) => b.slot - a.slot).slice(0, room)
  }

  /** True when we hold evidence against the validator (hex key). */
  isExcluded(validator: string): boolean {
    return this.excluded.has(validator)
  }

  /** Evidence from the network or a block: the offender's votes stop counting here. True if new. */
  noteEvidence(e: Evidence): boolean {
    const key = toHex(e.a.proposer)
    if (this.excluded.has(key)) return false
    this.excluded.add(key)
    this.headNode = this.selectHead()
    return true
  }

  get root(): BlockNode {
    return this.rootNode
  }

  get head(): BlockNode {
    return this.headNode
  }

  get size(): number {
    return this.nodes.size
  }

  has(hashHex: string): boolean {
    return this.nodes.has(hashHex)
  }

  get(hashHex: string): BlockNode | undefined {
    return this.nodes.get(hashHex)
  }

  latestVotes(): ReadonlyMap<string, Vote> {
    return this.votes
  }

  /** Nodes from the root (exclusive) to `tip` (inclusive), lowest first. */
  chainTo(tip: BlockNode = this.headNode): BlockNode[] {
    const out: BlockNode[] = []
    for (let n: BlockNode | undefined = tip; n !== undefined && n !== this.rootNode; n = this.parentOf(n)) out.push(n)
    return out.reverse()
  }

  /** True when the reading is in the chain ending at `tip` (final part included). */
  readingInChain(idHex: string, tip: BlockNode = this.headNode): boolean {
    for (let n: BlockNode | undefined = tip; n !== undefined && n !== this.rootNode; n = this.parentOf(n)) {
      if (n.readingIds.has(idHex)) return true
    }
    return this.finalReadings.has(idHex)
  }

  /**
   * Every rule `import` applies except the signature: our own candidate, before our slashing
   * protection lets us sign it. Throws the BlockError import would.
   */
  check(block: Block, nowMs: number): void {
    this.validate(block, nowMs, undefined, true)
  }

  /** Validate and import one block; throws a BlockError (IGNORE or REJECT) when it cannot be. */
  import(block: Block, nowMs: number, expectedHash?: Uint8Array): ImportResult {
    const { parent, state, weight, source } = this.validate(block, nowMs, expectedHash, false)
    const node: BlockNode = {
      block,
      hash: block.hash,
      hashHex: block.hashHex,
      parentHex: parent.hashHex,
      height: block.height,
      slot: block.slot,
      state,
      weight,
      // The lottery seed is the parent's RANDAO mix, which its proposer could not choose.
      ticket: ticketFor(parent.state.mix, block.proposer),
      proposerHex: toHex(block.proposer),
      children: new Set(),
      readingIds: new Set(block.readings.map((r) => r.idHex)),
    }
    this.nodes.set(node.hashHex, node)
    parent.children.add(node.hashHex)
    this.recordVote(node)
    const evidence = this.detectEquivocation(node)
    for (const e of block.evidence) this.excluded.add(toHex(e.a.proposer))
    const finalBefore = this.ffg.finalized()
    // The votes the block carries first (they justify its source), then its own.
    for (const h of block.votes) this.countHeaderVote(h)
    const src = source as SourceWhere
    if (src.where === 'ok') {
      this.ffg.addVote(
        node.proposerHex as string,
        node.hashHex,
        checkpointRef(src.node, block.source.epoch),
        checkpointRef(parent, block.slot),
      )
    }
    const finalAfter = this.ffg.finalized()
    return this.update(node, finalAfter === finalBefore ? undefined : finalAfter, evidence)
  }

  /** Signed vote headers carried by blocks, by hash (bounded: pruned with the tree). */
  private readonly headerVotes = new Map<string, BlockHeader>()

  /** A vote known only by its signed header (carried in a block): counted like the block itself. */
  private countHeaderVote(h: BlockHeader): void {
    if (this.nodes.has(h.hashHex) || this.headerVotes.has(h.hashHex)) return
    const target = this.nodes.get(toHex(h.parent))
    if (target === undefined || h.slot <= target.slot || h.source.epoch >= h.slot) return
    const src = this.whereIs(h.source, target)
    if (src.where !== 'ok') return
    this.headerVotes.set(h.hashHex, h)
    this.ffg.addVote(
      toHex(h.proposer),
      h.hashHex,
      checkpointRef(src.node, h.source.epoch),
      checkpointRef(target, h.slot),
    )
  }

  private validate(
    block: Block,
    nowMs: number,
    expectedHash: Uint8Array | undefined,
    unsigned: boolean,
  ): { parent: BlockNode; state: ChainState; weight: number; source: SourceWhere } {
    if (this.nodes.has(block.hashHex)) throw new BlockError('IGNORE', 'ALREADY_KNOWN', { hash: block.hashHex })
    if (block.height <= this.rootNode.height) {
      throw new BlockError('IGNORE', 'BELOW_FINALIZED', { height: block.height, finalized: this.rootNode.height })
    }
    const cp = this.checkpoint
    if (cp !== undefined && block.height === cp.height && block.hashHex !== cp.hashHex) {
      throw new BlockError('REJECT', 'CHECKPOINT_CONFLICT', { height: block.height, hash: block.hashHex })
    }
    const parent = this.nodes.get(toHex(block.parent))
    let source: SourceWhere = { where: 'stale' }
    const { state, weight } = validateBlock(this.net, block, {
      parent,
      nowMs,
      expectedHash,
      unsigned,
      readingInChain: (id) => parent !== undefined && this.readingInChain(id, parent),
      onChain: (hex) => parent !== undefined && this.onChainOf(hex, parent),
      blockOnChain: (hex) => (parent === undefined ? undefined : this.blockOnChain(hex, parent)),
      sourceCheck: (src) => {
        source = this.whereIs(src, parent as BlockNode)
        return source.where
      },
    })
    if (parent === undefined) throw new Error('unreachable: validateBlock accepted an unknown parent')
    return { parent, state, weight, source }
  }

  /** Find the source checkpoint on the path from `parent` down to the root. */
  private whereIs(src: Checkpoint, parent: BlockNode): SourceWhere {
    const hex = toHex(src.hash)
    for (let n: BlockNode | undefined = parent; n !== undefined; n = this.parentOf(n)) {
      if (n.hashHex !== hex) continue
      const genesis = n.block === undefined && n.height === 0
      return n.slot < src.epoch || (genesis && src.epoch === 0) ? { where: 'ok', node: n } : { where: 'bad' }
    }
    return { where: src.epoch <= this.ffg.finalized().epoch ? 'stale' : 'unknown' }
  }

  /** The imported block against the proposer's other blocks: evidence (once per offender). */
  private detectEquivocation(node: BlockNode): Evidence[] {
    const found = this.inspect(node.block as Block)
    return found === undefined ? [] : [found]
  }

  /**
   * A signed header (of a block we imported, or of another chain: a peer whose finalized chain
   * conflicts with ours) against the proposer's other headers we have seen: the evidence, if the
   * two break a slashing rule and we held none against it yet. The caller checked the signature.
   */
  inspect(header: BlockHeader): Evidence | undefined {
    const key = toHex(header.proposer)
    const list = this.seenHeaders.get(key) ?? []
    let found: Evidence | undefined
    if (!this.excluded.has(key)) {
      const other = list.find((h) => conflictOf(header, h) !== undefined)
      if (other !== undefined) {
        found = createEvidence(header, other)
        this.excluded.add(key)
      }
    }
    if (!list.some((h) => h.hashHex === header.hashHex)) {
      list.push(headerOf(header))
      if (list.length > SEEN_HEADERS_PER_PROPOSER) list.shift()
    }
    // Bounded in keys too: the proposer seen longest ago goes first.
    this.seenHeaders.delete(key)
    this.seenHeaders.set(key, list)
    if (this.seenHeaders.size > SEEN_PROPOSERS) this.seenHeaders.delete(this.seenHeaders.keys().next().value as string)
    return found
  }

  private recordVote(node: BlockNode): void {
    const key = node.proposerHex as string
    const prev = this.votes.get(key)
    // Latest = highest slot; two candidates in one slot (equivocation): the lower hash, so every
    // peer keeps the same one whatever the arrival order.
    if (prev === undefined || node.slot > prev.slot || (node.slot === prev.slot && node.hashHex < prev.candidate)) {
      this.votes.set(key, {
        slot: node.slot,
        candidate: node.hashHex,
        target: node.parentHex as string,
        weight: node.weight,
      })
    }
  }

  /** The parent of `n`, while it is in the tree (the root's parent is not). */
  parentOf(n: BlockNode): BlockNode | undefined {
    return n.parentHex === undefined ? undefined : this.nodes.get(n.parentHex)
  }

  /** Subtree vote weight of every node that has votes in or below it (no votes of the excluded). */
  subtreeWeights(): Map<string, number> {
    const weights = new Map<string, number>()
    for (const [validator, v] of this.votes) {
      if (this.excluded.has(validator)) continue
      for (let n = this.nodes.get(v.target); n !== undefined; n = this.parentOf(n)) {
        weights.set(n.hashHex, (weights.get(n.hashHex) ?? 0) + v.weight)
      }
    }
    return weights
  }

  /** LMD-GHOST from the justified block: heaviest child; equal weight: lowest ticket, then hash. */
  selectHead(weights: Map<string, number> = this.subtreeWeights(), from: BlockNode = this.ffg.best().node): BlockNode {
    let n = from
    for (;;) {
      let best: BlockNode | undefined
      let bestWeight = -1
      for (const childHex of n.children) {
        const c = this.nodes.get(childHex) as BlockNode
        const w = weights.get(childHex) ?? 0
        if (best === undefined || w > bestWeight || (w === bestWeight && compareEntrants(c, best) < 0)) {
          best = c
          bestWeight = w
        }
      }
      if (best === undefined) return n
      n = best
    }
  }

  private update(
    imported: BlockNode,
    finalCp: CheckpointRef<BlockNode> | undefined,
    evidence: Evidence[],
  ): ImportResult {
    const oldHead = this.headNode
    let head = this.selectHead()
    let finalized: BlockNode[] = []
    const target = finalCp?.node
    if (target !== undefined && target !== this.rootNode) {
      finalized = this.chainTo(target)
      for (const n of finalized)
        this.finalReadings.add(
          [...n.readingIds],
          (n.block?.readings ?? []).reduce((t, r) => Math.max(t, r.time), 0),
        )
    }
    // Reorg and newly canonical blocks are measured before pruning drops the old branch.
    const { canonical, reorgDepth } = this.diff(oldHead, head)
    let pruned: string[] = []
    if (finalCp !== undefined) {
      pruned = target === this.rootNode ? [] : this.prune(target as BlockNode)
      // No block above the root can hold a reading dated before its next slot's window.
      this.finalReadings.forgetBefore(blockReadingWindow(this.net, this.rootNode.slot + 1).earliest)
      this.ffg.prune(finalCp, (n) => this.nodes.has(n.hashHex))
      head = this.selectHead()
    }
    this.headNode = head
    return {
      node: imported,
      oldHead,
      head,
      canonical,
      reorgDepth,
      finalized,
      pruned,
      finalizedCheckpoint: this.ffg.finalized(),
      finalityMoved: finalCp !== undefined,
      evidence,
    }
  }

  /** True when block `hex` is `base` or one of its ancestors (in the tree, or final below the root). */
  onChainOf(hex: string, base: BlockNode): boolean {
    return this.blockOnChain(hex, base) !== undefined
  }

  /** Block `hex` when it is `base` or one of its ancestors (in the tree, or final below the root). */
  blockOnChain(hex: string, base: BlockNode): { readonly height: number; readonly slot: number } | undefined {
    const n = this.nodes.get(hex)
    if (n === undefined) return this.recentFinal.get(hex)
    return this.isAncestor(n, base) ? n : undefined
  }

  /** True when `a` is `b` or one of its ancestors in the tree. */
  isAncestor(a: BlockNode, b: BlockNode): boolean {
    for (let n: BlockNode | undefined = b; n !== undefined; n = this.parentOf(n)) if (n === a) return true
    return false
  }

  private diff(oldHead: BlockNode, newHead: BlockNode): { canonical: BlockNode[]; reorgDepth: number } {
    if (oldHead === newHead) return { canonical: [], reorgDepth: 0 }
    const onOld = new Set<string>()
    for (let n: BlockNode | undefined = oldHead; n !== undefined; n = this.parentOf(n)) onOld.add(n.hashHex)
    const canonical: BlockNode[] = []
    let n: BlockNode | undefined = newHead
    while (n !== undefined && !onOld.has(n.hashHex)) {
      canonical.push(n)
      n = this.parentOf(n)
    }
    const ancestorHeight = n?.height ?? this.rootNode.height
    return { canonical: canonical.reverse(), reorgDepth: oldHead.height - ancestorHeight }
  }

  /** Make `newRoot` the root and drop every block that does not descend from it. */
  private prune(newRoot: BlockNode): string[] {
    const keep = new Set<string>()
    const stack = [newRoot.hashHex]
    while (stack.length > 0) {
      const h = stack.pop() as string
      keep.add(h)
      for (const c of (this.nodes.get(h) as BlockNode).children) stack.push(c)
    }
    // The path from the old root up to the new one is final, not dropped.
    for (let n = this.parentOf(newRoot); n !== undefined; n = this.parentOf(n)) keep.add(n.hashHex)
    const pruned: string[] = []
    for (const h of [...this.nodes.keys()]) {
      if (!keep.has(h)) pruned.push(h)
    }
    const path: RecentFinal[] = []
    for (let n = this.parentOf(newRoot); n !== undefined; n = this.parentOf(n)) {
      this.nodes.delete(n.hashHex)
      path.push({ hashHex: n.hashHex, height: n.height, slot: n.slot })
    }
    for (const f of path.reverse()) this.recentFinal.set(f.hashHex, f)
    for (const h of this.recentFinal.keys()) {
      if (this.recentFinal.size <= RECENT_FINAL) break
      this.recentFinal.delete(h)
    }
    for (const h of pruned) this.nodes.delete(h)
    this.rootNode = newRoot
    for (const [v, vote] of this.votes) if (!this.nodes.has(vote.target)) this.votes.delete(v)
    for (const [h, header] of this.headerVotes) if (!this.nodes.has(toHex(header.parent))) this.headerVotes.delete(h)
    return pruned
  }
}
