import { concatBytes, toHex, utf8 } from './bytes.js'
import { type Signer, sha256 } from './crypto.js'
import type { ChainConfig } from './params.js'

/**
 * RANDAO-style reveals (docs/PROTOCOL.md section 4). Each stake announcement commits to the end of
 * a hash chain `c = H^n(seed)`; each block of that validator reveals the next preimage down the
 * chain (`H(reveal)` = the validator's current point), and the state's mix becomes
 * `H(parent mix || reveal)`. The lottery seed of a slot is the parent's mix: the proposer of the
 * parent could only publish its one possible reveal or withhold the block, never choose the seed.
 */

/** Links per chain. A commitment lasts until the next renewal (at most stakeTtlSlots + 1 blocks). */
export const REVEAL_CHAIN_LENGTH = 1024

/** The secret seed of a validator's chain for announcement `seq`: only the key holder can make it. */
function seedOf(net: ChainConfig, signer: Signer, seq: number): Uint8Array {
  const seqBytes = new Uint8Array(8)
  new DataView(seqBytes.buffer).setBigUint64(0, BigInt(seq))
  // Ed25519 signatures by the honest signer are deterministic (RFC 8032), so a restart derives
  // the same chain; hashing the signature keeps the seed unlinkable to anything public.
  return sha256(signer.sign(concatBytes(utf8('pos-peer/randao-seed/v1'), new Uint8Array([0]), net.id, seqBytes)))
}

/** The new mix after a reveal. */
export function nextMix(parentMix: Uint8Array, reveal: Uint8Array): Uint8Array {
  return sha256(concatBytes(parentMix, reveal))
}

/** One validator's hash chain for one announcement: values[i] = H^i(seed), commit = values[n]. */
export class RevealChain {
  private readonly values: Uint8Array[]
  private readonly index = new Map<string, number>()

  constructor(seed: Uint8Array, length = REVEAL_CHAIN_LENGTH) {
    this.values = [seed]
    for (let i = 1; i <= length; i++) this.values.push(sha256(this.values[i - 1]))
    for (const [i, v] of this.values.entries()) this.index.set(toHex(v), i)
  }

  get commit(): Uint8Array {
    return this.values[this.values.length - 1]
  }

  /** The reveal whose hash is `point` (a value of this chain), or undefined (not ours, or used up). */
  revealFor(point: Uint8Array): Uint8Array | undefined {
    const i = this.index.get(toHex(point))
    return i === undefined || i === 0 ? undefined : this.values[i - 1]
  }
}

/**
 * A validator's reveal chains, one per announcement seq, derived on demand and cached (the last
 * few): O(1) per block once made, n hashes per new announcement.
 */
export class Revealer {
  private readonly chains = new Map<number, RevealChain>()

  constructor(
    private readonly net: ChainConfig,
    private readonly signer: Signer,
  ) {}

  chain(seq: number): RevealChain {
    let c = this.chains.get(seq)
    if (c === undefined) {
      c = new RevealChain(seedOf(this.net, this.signer, seq))
      this.chains.set(seq, c)
      if (this.chains.size > 4) this.chains.delete(Math.min(...this.chains.keys()))
    }
    return c
  }

  /** The reveal for the next block when the state holds `point` for announcement `seq`. */
  revealFor(seq: number, point: Uint8Array): Uint8Array | undefined {
    return this.chain(seq).revealFor(point)
  }
}

const revealers = new WeakMap<Signer, Map<string, Revealer>>()

/** The process-wide revealer of a signer on a network (one chain cache per key). */
export function revealerOf(net: ChainConfig, signer: Signer): Revealer {
  const byNet = revealers.get(signer) ?? new Map<string, Revealer>()
  revealers.set(signer, byNet)
  let r = byNet.get(net.idHex)
  if (r === undefined) {
    r = new Revealer(net, signer)
    byNet.set(net.idHex, r)
  }
  return r
}
