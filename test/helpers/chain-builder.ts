import { toHex } from '../../src/core/bytes.js'
import { Chain, type ImportResult } from '../../src/core/chain.js'
import type { Signer } from '../../src/core/crypto.js'
import { Mempool } from '../../src/core/mempool.js'
import type { ChainConfig } from '../../src/core/params.js'
import { buildSignedCandidate } from '../../src/core/proposer.js'
import { createReading, createStake } from '../../src/core/records.js'
import { timeOf } from './fixtures.js'

/**
 * Drives validators that all see every candidate at once (no network): each slot every validator
 * proposes on the shared head. Used to make realistic chains for storage and sync tests.
 */
export class LockstepChain {
  readonly chain: Chain
  readonly mempool = new Mempool()
  slot: number

  constructor(
    readonly net: ChainConfig,
    readonly signers: Signer[],
    stakes: number[],
    chain?: Chain,
    startSlot = 1,
  ) {
    this.chain = chain ?? new Chain(net)
    this.slot = startSlot
    this.stakes = stakes
    this.announce()
  }

  private readonly stakes: number[]

  /** Announce (or renew) every validator's stake with the next seq. */
  private announce(): void {
    for (const [i, s] of this.signers.entries()) {
      const seq = (this.chain.head.state.stakes.get(toHex(s.publicKey))?.seq ?? 0) + 1
      this.mempool.addStake(createStake(this.net, s, this.stakes[i], seq))
    }
  }

  addReading(author: number, bpm: number): string {
    const r = createReading(this.net, this.signers[author], bpm, timeOf(this.net, this.slot - 1))
    this.mempool.addReading(r)
    return r.idHex
  }

  /** One slot: every validator with work proposes; all candidates are imported (bounded by the caller). */
  step(onImport?: (r: ImportResult) => void): ImportResult[] {
    if (this.slot % Math.floor(this.net.params.stakeTtlSlots / 2) === 0) this.announce()
    const now = timeOf(this.net, this.slot)
    const candidates = this.signers.map((s) => buildSignedCandidate(this.chain, this.mempool, s, this.slot))
    const results: ImportResult[] = []
    for (const c of candidates) {
      if (c === undefined) continue
      const r = this.chain.import(c, now)
      results.push(r)
      onImport?.(r)
    }
    this.mempool.pruneFinal(this.chain)
    this.slot++
    return results
  }
}
