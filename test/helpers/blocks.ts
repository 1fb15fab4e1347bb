import { equalBytes, toHex } from '../../src/core/bytes.js'
import type { Signer } from '../../src/core/crypto.js'
import type { ChainConfig } from '../../src/core/params.js'
import { revealerOf } from '../../src/core/randao.js'
import { type Block, type BlockContent, createBlock as createSignedBlock } from '../../src/core/records.js'
import { transferOrderKey } from '../../src/core/validation.js'

/** Every block made through `createBlock` here, by hash: where a signer's RANDAO point is read from. */
const made = new Map<string, Block>()

/** The signer's RANDAO (seq, point) at the end of the chain ending at `parentHex`, from blocks made here. */
function pointAt(signer: Signer, parentHex: string): { seq: number; point: Uint8Array } | undefined {
  let point: Uint8Array | undefined
  for (let b = made.get(parentHex); b !== undefined; b = made.get(toHex(b.parent))) {
    if (point === undefined && equalBytes(b.proposer, signer.publicKey)) point = b.reveal
    const own = b.stakes.find((s) => equalBytes(s.validator, signer.publicKey))
    if (own !== undefined) return { seq: own.seq, point: point ?? own.commit }
  }
  return undefined
}

/**
 * `createBlock` for tests: records in canonical order and the RANDAO reveal an honest proposer
 * would make (after its own announcement in this block, else where its point is on the parent's
 * chain), unless given.
 */
export function createBlock(net: ChainConfig, signer: Signer, content: BlockContent): Block {
  let reveal = content.reveal
  if (reveal === undefined) {
    const own = content.stakes.find((s) => equalBytes(s.validator, signer.publicKey))
    const from = own !== undefined ? { seq: own.seq, point: own.commit } : pointAt(signer, toHex(content.parent))
    reveal = from === undefined ? undefined : revealerOf(net, signer).revealFor(from.seq, from.point)
  }
  const byHex =
    <T>(key: (x: T) => string) =>
    (a: T, b: T) =>
      key(a) < key(b) ? -1 : 1
  // Records in the canonical order, as the proposer makes them (a block rule).
  const block = createSignedBlock(net, signer, {
    ...content,
    readings: [...content.readings].sort(byHex((r) => r.idHex)),
    stakes: [...content.stakes].sort(byHex((s) => toHex(s.validator))),
    transfers: [...(content.transfers ?? [])].sort(byHex(transferOrderKey)),
    evidence: [...(content.evidence ?? [])].sort(byHex((e) => e.idHex)),
    votes: [...(content.votes ?? [])].sort(byHex((h) => h.hashHex)),
    reveal,
  })
  made.set(block.hashHex, block)
  return block
}

/** The first block of a chain (height 1, slot 1, on genesis), founded by `signer` with these announcements. */
export function foundingBlock(net: ChainConfig, signer: Signer, stakes: BlockContent['stakes']): Block {
  return createBlock(net, signer, { height: 1, slot: 1, parent: net.id, readings: [], stakes })
}
