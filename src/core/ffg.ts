import type { NetworkParams } from './params.js'
import { activeStake, type ChainState, hasActiveStake, isSlashed } from './state.js'

/** What the FFG bookkeeping needs of a block in the tree. */
export interface FfgNode {
  readonly hashHex: string
  readonly slot: number
  readonly state: ChainState
}

/** A checkpoint as the tree holds it: a block of the tree and an epoch (a slot). */
export interface CheckpointRef<N extends FfgNode> {
  readonly node: N
  readonly epoch: number
  readonly key: string
}

export const refKey = (hashHex: string, epoch: number): string => `${hashHex}@${epoch}`

export function checkpointRef<N extends FfgNode>(node: N, epoch: number): CheckpointRef<N> {
  return { node, epoch, key: refKey(node.hashHex, epoch) }
}

interface Link<N extends FfgNode> {
  readonly source: CheckpointRef<N>
  readonly target: CheckpointRef<N>
  /** Validator (hex key) -> the block (hash hex) that cast this vote. */
  readonly voters: Map<string, string>
  /** The state whose stake counts (the source block's, or the target's when none is active there). */
  counted?: ChainState
  /** All stake counted for this link (`countedWeight` summed), made on its first evaluation. */
  total?: number
}

/** Higher epoch first; equal epochs (only ever by a slashable split): the lower hash. */
const better = <N extends FfgNode>(a: CheckpointRef<N>, b: CheckpointRef<N>): boolean =>
  a.epoch > b.epoch || (a.epoch === b.epoch && a.node.hashHex < b.node.hashHex)

/**
 * Casper FFG justification and finalization over the block tree (docs/PROTOCOL.md section 5).
 * Every block is one vote: source = the checkpoint it names, target = (its parent, its slot). A
 * checkpoint is justified when it is the root's or when validators holding more than 2/3 of the
 * stake counted for a link (the source block's state, at the target epoch) vote that link from a
 * justified source; a justified source is finalized by a link to the very next epoch. Pure and
 * deterministic: what is justified follows from the set of votes seen, whatever their order.
 */
export class Justification<N extends FfgNode> {
  private readonly justified = new Map<string, CheckpointRef<N>>()
  private readonly links = new Map<string, Link<N>>()
  private readonly bySource = new Map<string, Set<string>>()
  /** Justified checkpoint key -> the link that justified it. */
  private readonly justifiedBy = new Map<string, string>()
  private bestRef: CheckpointRef<N>
  private finalRef: CheckpointRef<N>

  constructor(
    private readonly params: NetworkParams,
    root: CheckpointRef<N>,
  ) {
    this.justified.set(root.key, root)
    this.bestRef = root
    this.finalRef = root
  }

  /** The highest justified checkpoint: fork choice starts at its block. */
  best(): CheckpointRef<N> {
    return this.bestRef
  }

  finalized(): CheckpointRef<N> {
    return this.finalRef
  }

  isJustified(key: string): boolean {
    return this.justified.has(key)
  }

  /** Every justified checkpoint (bounded by the tree). */
  all(): Iterable<CheckpointRef<N>> {
    return this.justified.values()
  }

  /**
   * The stake a validator counts with for a link: its stake active in the source block's state at
   * the target epoch, or, when none is (a fresh network: genesis has no stake), in the target
   * block's state; none when it is slashed in the target block's state (evidence on that chain
   * convicts it at once, so a convicted validator holding over 1/3 of an old set cannot hold
   * finality back), or the inactivity leak ejected it on that chain after the source block (so a
   * silent third that stalled finality cannot go on holding it back from an old source).
   * Stake changes otherwise count once a justified block holds them. States never change, so a
   * link's total is summed once (no per-vote copy of a stake table: a flooded one has 60,000).
   */
  private countedWeight(link: Link<N>, validator: string): number {
    const { source, target } = link
    const w = activeStake(this.params, this.countedState(link), validator, target.epoch)
    if (w === 0) return 0
    const e = target.node.state.stakes.get(validator)
    return isSlashed(target.node.state, validator) || (e?.ejectedAt ?? 0) > source.node.slot ? 0 : w
  }

  private countedState(link: Link<N>): ChainState {
    const { source, target } = link
    link.counted ??= hasActiveStake(this.params, source.node.state, target.epoch)
      ? source.node.state
      : target.node.state
    return link.counted
  }

  private linkTotal(link: Link<N>): number {
    if (link.total === undefined) {
      let total = 0
      for (const v of this.countedState(link).stakes.keys()) total += this.countedWeight(link, v)
      link.total = total
    }
    return link.total
  }

  /**
   * One vote. Returns the checkpoint finalized by it (directly or by a cascade of links that were
   * waiting for their source), if the finalized checkpoint moved up.
   */
  addVote(
    validator: string,
    block: string,
    source: CheckpointRef<N>,
    target: CheckpointRef<N>,
  ): CheckpointRef<N> | undefined {
    const linkKey = `${source.key}>${target.key}`
    let link = this.links.get(linkKey)
    if (link === undefined) {
      link = { source, target, voters: new Map() }
      this.links.set(linkKey, link)
      const s = this.bySource.get(source.key) ?? new Set<string>()
      this.bySource.set(source.key, s)
      s.add(linkKey)
    }
    if (link.voters.has(validator)) return undefined
    link.voters.set(validator, block)
    return this.settle([linkKey])
  }

  /** Evaluate links again (after votes were excluded nothing can become justified; after a new
   * justified checkpoint, the links from it). */
  private settle(work: string[]): CheckpointRef<N> | undefined {
    const before = this.finalRef
    while (work.length > 0) {
      const key = work.pop() as string
      const link = this.links.get(key)
      if (link === undefined || this.justified.has(link.target.key) || !this.justified.has(link.source.key)) continue
      if (!this.supermajority(link)) continue
      this.justified.set(link.target.key, link.target)
      this.justifiedBy.set(link.target.key, key)
      if (better(link.target, this.bestRef)) this.bestRef = link.target
      if (link.target.epoch === link.source.epoch + 1 && link.source.epoch > this.finalRef.epoch) {
        this.finalRef = link.source
      }
      for (const k of this.bySource.get(link.target.key) ?? []) work.push(k)
    }
    return this.finalRef === before ? undefined : this.finalRef
  }

  private supermajority(link: Link<N>): boolean {
    const total = this.linkTotal(link)
    let voted = 0
    // An offender's votes stop counting here once evidence against it is in the source's chain
    // (it is slashed in that state, so it counts nothing). Not on our local knowledge alone:
    // views that learn of it at different moments would disagree on what is justified for good.
    for (const v of link.voters.keys()) voted += this.countedWeight(link, v)
    return total > 0 && voted * 3 > total * 2
  }

  /**
   * The blocks (hash hex) whose votes justified checkpoint `key`, if we saw them do it: the
   * heaviest voters first (then by hash). A block carries at most maxVotesPerBlock of them, and
   * those must hold more than 2/3 of the stake (`linkProven`): in hash order a network of more
   * than 128 validators could leave out the few that hold most of it.
   */
  proof(key: string): string[] {
    const link = this.links.get(this.justifiedBy.get(key) ?? '')
    if (link === undefined) return []
    return [...link.voters]
      .map(([v, hex]) => ({ hex, weight: this.countedWeight(link, v) }))
      .sort((a, b) => b.weight - a.weight || (a.hex < b.hex ? -1 : 1))
      .map((x) => x.hex)
  }

  /**
   * The source for a vote at `slot`: the highest justified checkpoint with an earlier epoch whose
   * block `onChain` accepts (the block the vote builds on, or an ancestor of it).
   */
  sourceFor(slot: number, onChain: (n: N) => boolean): CheckpointRef<N> {
    let out = this.finalRef
    for (const c of this.justified.values()) {
      if (c.epoch < slot && better(c, out) && onChain(c.node)) out = c
    }
    return out
  }

  /** The root moved to `root` (finalized): forget checkpoints and links on blocks not kept. */
  prune(root: CheckpointRef<N>, kept: (n: N) => boolean): void {
    for (const [k, c] of this.justified) {
      if (!kept(c.node) || c.epoch < root.epoch) {
        this.justified.delete(k)
        this.justifiedBy.delete(k)
      }
    }
    this.justified.set(root.key, root)
    for (const [k, l] of this.links) {
      if (!kept(l.target.node) || !kept(l.source.node) || l.source.epoch < root.epoch) {
        this.links.delete(k)
        this.bySource.get(l.source.key)?.delete(k)
      }
    }
    for (const [k, s] of this.bySource) if (s.size === 0) this.bySource.delete(k)
    this.finalRef = root
    this.bestRef = root
    for (const c of this.justified.values()) if (better(c, this.bestRef)) this.bestRef = c
  }
}
