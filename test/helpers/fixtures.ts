import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { toHex, utf8 } from '../../src/core/bytes.js'
import type { Chain } from '../../src/core/chain.js'
import { type Signer, sha256, signerFromLibp2pKey } from '../../src/core/crypto.js'
import { type ChainConfig, makeChainConfig, type NetworkParams, slotStart } from '../../src/core/params.js'
import type { Block, BlockContent } from '../../src/core/records.js'
import { createBlock, foundingBlock } from './blocks.js'

/** A deterministic signer: the same name gives the same key in every run. */
export async function testSigner(name: string): Promise<Signer> {
  const key = await generateKeyPairFromSeed('Ed25519', sha256(utf8(`pos-peer test key ${name}`)))
  return signerFromLibp2pKey(key)
}

export async function testSigners(n: number, prefix = 'v'): Promise<Signer[]> {
  return Promise.all(Array.from({ length: n }, (_, i) => testSigner(`${prefix}${i}`)))
}

export const TEST_PARAMS: Partial<NetworkParams> = { name: 'testnet', slotMs: 1000, stakeTtlSlots: 50 }

export function testNetwork(overrides: Partial<NetworkParams> = {}): ChainConfig {
  return makeChainConfig({ ...TEST_PARAMS, ...overrides })
}

/** A genesis network (stake backed by tokens) with these balances. */
export function testGenesisNetwork(
  balances: readonly (readonly [Signer, number])[],
  overrides: Partial<NetworkParams> = {},
): ChainConfig {
  return makeChainConfig(
    { ...TEST_PARAMS, name: 'testgenesis', ...overrides },
    new Map(balances.map(([s, n]) => [toHex(s.publicKey), n])),
  )
}

/** Unix ms in the middle of `slot`. */
export function timeOf(net: ChainConfig, slot: number): number {
  return slotStart(net.params, slot) + Math.floor(net.params.slotMs / 2)
}

/** A small seeded PRNG (mulberry32) for test scenarios; never used by the protocol. */
export function prng(seed: number): () => number {
  let a = seed >>> 0
  return () => {
    a = (a + 0x6d2b79f5) >>> 0
    let t = a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

/**
 * A block by `signer` on `parent` (hash hex, in `chain`) at `slot`, voting as an honest
 * proposer would: its FFG source is the highest justified checkpoint on the parent's chain.
 */
export function voteOn(
  chain: Chain,
  signer: Signer,
  parentHex: string,
  slot: number,
  content: Partial<BlockContent> = {},
): Block {
  const parent = chain.get(parentHex)
  if (parent === undefined) throw new Error(`voteOn: ${parentHex.slice(0, 8)} is not in the tree`)
  const source = chain.sourceFor(slot, parent)
  return createBlock(chain.net, signer, {
    height: parent.height + 1,
    slot,
    parent: parent.hash,
    readings: [],
    stakes: [],
    source,
    votes: chain.votesFor(source),
    ...content,
  })
}

/** The slot of the last block `foundChain` makes: from the next slot on every founding validator's vote counts. */
export const FOUNDED_SLOT = 5

/**
 * Found a chain in `chain`: `founder`'s block 1 (slot 1) takes `stakes`, then the founder builds
 * alone up to FOUNDED_SLOT. New stake counts only once its block is final as the chain shows it:
 * the founder's blocks of slots 2 and 3 finalize block 1 (FFG's two rounds), block 4 is the first
 * whose source shows it (the others count in its state), and block 5's vote justifies (b4, 5), the
 * first source whose state counts everyone. Returns the blocks made, block 5 last.
 */
export function foundChain(chain: Chain, founder: Signer, stakes: BlockContent['stakes']): Block[] {
  const blocks = [foundingBlock(chain.net, founder, stakes)]
  chain.import(blocks[0], timeOf(chain.net, 1))
  for (let s = 2; s <= FOUNDED_SLOT; s++) {
    const b = voteOn(chain, founder, (blocks.at(-1) as Block).hashHex, s)
    chain.import(b, timeOf(chain.net, s))
    blocks.push(b)
  }
  return blocks
}
