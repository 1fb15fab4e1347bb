import { describe, expect, it } from 'vitest'
import { checkpointRef, type FfgNode, Justification } from '../../src/core/ffg.js'
import { type ChainState, genesisState, type StakeEntry } from '../../src/core/state.js'
import { testNetwork } from '../helpers/fixtures.js'

const net = testNetwork()
const entry = (stake: number): StakeEntry => ({
  stake,
  counted: stake,
  seq: 1,
  renewedSlot: 0,
  point: new Uint8Array(32),
})

describe('FFG justification', () => {
  it("a checkpoint's proof lists the heaviest voters first (a block carries only maxVotesPerBlock of them)", () => {
    // 200 validators: 3 hold 1,000 each, 197 hold 1 each (total 3,197; 2/3 needs more than 2,131).
    const stakes = new Map<string, StakeEntry>()
    const heavy = ['h0', 'h1', 'h2']
    for (const k of heavy) stakes.set(k, entry(1000))
    const light = Array.from({ length: 197 }, (_, i) => `l${String(i).padStart(3, '0')}`)
    for (const k of light) stakes.set(k, entry(1))
    const state: ChainState = { ...genesisState(net), stakes }
    const root: FfgNode = { hashHex: '00', slot: 0, state }
    const target: FfgNode = { hashHex: '01', slot: 1, state }
    const ffg = new Justification<FfgNode>(net.params, checkpointRef(root, 0))
    const src = checkpointRef(root, 0)
    const tgt = checkpointRef(target, 1)
    // The vote blocks' hashes: the heavy validators' sort last.
    for (const [i, k] of light.entries()) ffg.addVote(k, `a${String(i).padStart(3, '0')}`, src, tgt)
    for (const [i, k] of heavy.entries()) ffg.addVote(k, `f${i}`, src, tgt)
    const proof = ffg.proof(tgt.key)
    expect(proof).toHaveLength(200)
    // The first 128 (what one block carries) hold the heavy three, so they prove the link.
    expect(proof.slice(0, 3)).toEqual(['f0', 'f1', 'f2'])
    expect(proof.slice(3, 6)).toEqual(['a000', 'a001', 'a002'])
  })
})
