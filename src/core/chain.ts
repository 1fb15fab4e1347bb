import { toHex } from './bytes.js'
import { BlockError } from './errors.js'
import { compareEntrants, ticketFor } from './lottery.js'
import type { ChainConfig } from './params.js'
import type { Block } from './records.js'
import { activeValidators, type ChainState, EMPTY_STATE } from './state.js'
import { validateBlock } from './validation.js'

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
}

export function genesisRoot(net: ChainConfig): ChainRoot {
  return { block: undefined, hash: net.id, height: 0, slot: 0, state: EMPTY_STATE }
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
}

/** A block the user vouches for (`--checkpoint`): a chain without it at its height is refused. */
export interface Checkpoint {
  readonly height: number
  readonly hashHex: string
}

export interface ChainOptions {
  readonly root?: ChainRoot
  readonly checkpoint?: Checkpoint
  /** Ids of every reading in the finalized chain (root included); the chain adds to it. */
  readonly finalReadings?: Set<string>
}

/** Stake counted for finality of a block (docs/PROTOCOL.md, "Counted stake"). */
function countedStake(members: Map<string, number>, parentActive: Map<string, number>): Map<string, number> {
  const out = new Map<string, number>()
  for (const [validator, stake] of parentActive) {
    const m = members.get(validator)
    if (m !== undefined) out.set(validator, Math.min(m, stake))
  }
  return out.size === 0 ? parentActive : out
}

/**
 * Block tree, latest votes, fork choice (LMD-GHOST with candidates as votes and the lottery as
 * tie-break) and stake-supermajority finality. Pure: time is passed in, nothing is stored here.
 * (Over 300 lines, one concern: the tree and the rules that read it.)
 */
export class Chain {
  readonly net: ChainConfig
  readonly finalReadings: Set<string>
  private readonly nodes = new Map<string, BlockNode>()
  private readonly votes = new Map<string, Vote>()
  private rootNode: BlockNode
  private headNode: BlockNode
  private readonly checkpoint: Checkpoint | undefined

  constructor(net: ChainConfig, opts: ChainOptions = {}) {
    this.net = net
    const r = opts.root ?? genesisRoot(net)
    this.finalReadings = opts.finalReadings ?? new Set()
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

  /** Validate and import one block; throws a BlockError (IGNORE or REJECT) when it cannot be. */
  import(block: Block, nowMs: number, expectedHash?: Uint8Array): ImportResult {
    if (this.nodes.has(block.hashHex)) throw new BlockError('IGNORE', 'ALREADY_KNOWN', { hash: block.hashHex })
    if (block.height <= this.rootNode.height) {
      throw new BlockError('IGNORE', 'BELOW_FINALIZED', { height: block.height, finalized: this.rootNode.height })
    }
    const cp = this.checkpoint
    if (cp !== undefined && block.height === cp.height && block.hashHex !== cp.hashHex) {
      throw new BlockError('REJECT', 'CHECKPOINT_CONFLICT', { height: block.height, hash: block.hashHex })
    }
    const parent = this.nodes.get(toHex(block.parent))
    const { state, weight } = validateBlock(this.net, block, {
      parent,
      nowMs,
      expectedHash,
      readingInChain: (id) => parent !== undefined && this.readingInChain(id, parent),
    })
    if (parent === undefined) throw new Error('unreachable: validateBlock accepted an unknown parent')
    const node: BlockNode = {
      block,
      hash: block.hash,
      hashHex: block.hashHex,
      parentHex: parent.hashHex,
      height: block.height,
      slot: block.slot,
      state,
      weight,
      ticket: ticketFor(block.parent, block.proposer),
      proposerHex: toHex(block.proposer),
      children: new Set(),
      readingIds: new Set(block.readings.map((r) => r.idHex)),
    }
    this.nodes.set(node.hashHex, node)
    parent.children.add(node.hashHex)
    this.recordVote(node)
    return this.update(node)
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

  /** Subtree vote weight of every node that has votes in or below it. */
  subtreeWeights(): Map<string, number> {
    const weights = new Map<string, number>()
    for (const v of this.votes.values()) {
      for (let n = this.nodes.get(v.target); n !== undefined; n = this.parentOf(n)) {
        weights.set(n.hashHex, (weights.get(n.hashHex) ?? 0) + v.weight)
      }
    }
    return weights
  }

  /** LMD-GHOST from the finalized root: heaviest child; equal weight: lowest ticket, then hash. */
  selectHead(weights: Map<string, number> = this.subtreeWeights(), from: BlockNode = this.rootNode): BlockNode {
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

  /**
   * The new final block, if any: the highest block anywhere in the tree whose subtree holds the
   * latest votes of more than 2/3 of its counted stake (docs/PROTOCOL.md, "Finality").
   */
  private findFinalizable(): BlockNode | undefined {
    // Who votes in each block's subtree: walk every latest vote up to the root.
    const voters = new Map<string, string[]>()
    for (const [validator, v] of this.votes) {
      for (let n = this.nodes.get(v.target); n !== undefined && n !== this.rootNode; n = this.parentOf(n)) {
        const list = voters.get(n.hashHex)
        if (list === undefined) voters.set(n.hashHex, [validator])
        else list.push(validator)
      }
    }
    let best: BlockNode | undefined
    const membersBySlot = new Map<number, Map<string, number>>()
    for (const [hashHex, list] of voters) {
      const b = this.nodes.get(hashHex) as BlockNode
      if (best !== undefined && (b.height < best.height || (b.height === best.height && b.hashHex > best.hashHex)))
        continue
      let members = membersBySlot.get(b.slot)
      if (members === undefined) {
        members = activeValidators(this.net.params, this.rootNode.state, b.slot)
        membersBySlot.set(b.slot, members)
      }
      const counted = countedStake(
        members,
        activeValidators(this.net.params, (this.parentOf(b) as BlockNode).state, b.slot),
      )
      let total = 0
      for (const s of counted.values()) total += s
      let voted = 0
      for (const validator of list) voted += counted.get(validator) ?? 0
      if (total > 0 && voted * 3 > total * 2) best = b
    }
    return best
  }

  private update(imported: BlockNode): ImportResult {
    const oldHead = this.headNode
    let head = this.selectHead()
    let finalized: BlockNode[] = []
    const target = this.findFinalizable()
    if (target !== undefined) {
      finalized = this.chainTo(target)
      for (const n of finalized) for (const id of n.readingIds) this.finalReadings.add(id)
    }
    // Finality reached on a branch our fork choice did not prefer: follow it.
    if (target !== undefined && !this.isAncestor(target, head)) head = this.selectHead(undefined, target)
    // Reorg and newly canonical blocks are measured before pruning drops the old branch.
    const { canonical, reorgDepth } = this.diff(oldHead, head)
    let pruned: string[] = []
    if (target !== undefined) {
      pruned = this.prune(target)
      head = this.selectHead()
    }
    this.headNode = head
    return { node: imported, oldHead, head, canonical, reorgDepth, finalized, pruned }
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
    for (let n = this.parentOf(newRoot); n !== undefined; n = this.parentOf(n)) this.nodes.delete(n.hashHex)
    for (const h of pruned) this.nodes.delete(h)
    this.rootNode = newRoot
    return pruned
  }
}
