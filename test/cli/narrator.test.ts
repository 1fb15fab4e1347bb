import { describe, expect, it } from 'vitest'
import { TextNarrator, type TextOptions } from '../../src/cli/narrator.js'
import type { BlockNode } from '../../src/core/chain.js'
import type { Peer } from '../../src/node/peer.js'

const ME = 'aa'.repeat(32)
const OTHER = 'bb'.repeat(32)

/** Just enough of a peer and its chain for the narrator: nodes by hash, a clock at `slot`. */
function fakePeer(nodes: BlockNode[], slot: number): Peer {
  const byHash = new Map(nodes.map((n) => [n.hashHex, n]))
  return {
    publicKeyHex: ME,
    chain: { parentOf: (n: BlockNode) => (n.parentHex === undefined ? undefined : byHash.get(n.parentHex)) },
    currentSlot: () => slot,
    validators: () => [],
    head: () => nodes.at(-1),
    finalized: () => nodes[0],
    connectedPeers: () => [],
    config: { params: { slotMs: 1000 } },
  } as unknown as Peer
}

/** A narrator on `peer` whose lines are collected in `lines`. */
function narrate(peer: Peer, opts: TextOptions = {}) {
  const lines: string[] = []
  const t = new TextNarrator(peer, (l) => lines.push(l), { statusEveryMs: 0, ...opts })
  return { t, lines }
}

const node = (height: number, proposerHex: string | undefined, parent?: BlockNode): BlockNode =>
  ({
    height,
    slot: 100 + height,
    hashHex: `${proposerHex === ME ? 'm' : 'o'}${height}`,
    parentHex: parent?.hashHex,
    proposerHex,
    children: new Set(),
    block: { readings: [], stakes: [], parent: new Uint8Array(32), proposer: Buffer.from(proposerHex ?? '00', 'hex') },
  }) as unknown as BlockNode

describe('the text of chain events', () => {
  it('a reorg that takes our blocks away names them; one that does not is one short line', () => {
    const root = node(10, undefined)
    const ours11 = node(11, ME, root)
    const ours12 = node(12, OTHER, ours11)
    const { t, lines } = narrate(fakePeer([root, ours11, ours12], 113))
    t.block(ours11)
    t.block(ours12)
    lines.length = 0
    t.reorg(ours12, 2)
    expect(lines).toEqual([
      'reorg: your block #11 left the chain: another branch (depth 2) won; readings in it go in the next block',
    ])
    lines.length = 0
    t.reorg(ours12, 1)
    expect(lines).toEqual(['reorg: switched to another branch (depth 1)'])
  })

  it('a block of the running slot is announced when the slot is over, and only if it is still on the chain', async () => {
    const slotMs = 40
    const params = { slotMs, genesisTime: 0 }
    const root = node(10, undefined)
    const nowSlot = () => Math.floor(Date.now() / slotMs)
    const ours = { ...node(11, ME, root), slot: nowSlot() } as BlockNode
    let head: BlockNode = ours
    const peer = {
      ...fakePeer([root, ours], 0),
      currentSlot: nowSlot,
      head: () => head,
      config: { params },
    } as unknown as Peer
    const { t, lines } = narrate(peer)
    t.block(ours)
    expect(lines).toEqual([]) // not yet: the slot is still running
    // Another candidate of the same slot wins before the slot is over: nothing to take back.
    const theirs = { ...node(11, OTHER, root), hashHex: 'o11', slot: ours.slot } as BlockNode
    head = theirs
    t.reorg(ours, 1)
    t.block(theirs)
    await new Promise((r) => setTimeout(r, slotMs * 3))
    expect(lines).toEqual([expect.stringMatching(/^#11 won by (?!you)/)])
    t.stop()
  })

  it('finality moving several blocks at once is one line for the highest', async () => {
    const root = node(10, undefined)
    const a = node(11, OTHER, root)
    const b = node(12, ME, a)
    const { t, lines } = narrate(fakePeer([root, a, b], 113))
    t.finalized(a)
    t.finalized(b)
    await Promise.resolve()
    expect(lines).toEqual(['#12 final (yours)'])
  })

  it('blocks far behind the clock (sync) are not announced; live ones are, and end the progress line', () => {
    const root = node(10, undefined)
    const old = node(11, OTHER, root)
    const progress: (string | undefined)[] = []
    const { t, lines } = narrate(fakePeer([root, old], 200), { progress: (l) => progress.push(l) })
    t.progress(11, 100)
    t.block(old)
    expect(lines).toEqual([])
    expect(progress[0]).toMatch(/^Syncing 11 \/ 100 \(\d+ blocks\/s, 0 peers\)$/)
    const live = { ...node(12, OTHER, old), slot: 199 } as BlockNode
    t.block(live)
    expect(progress.at(-1)).toBeUndefined()
    expect(lines[0]).toMatch(/^Synced to #/)
    expect(lines[1]).toMatch(/^#12 won by /)
  })
})
