import { equalBytes, toHex } from './bytes.js'
import type { BlockNode, Chain } from './chain.js'
import type { Signer } from './crypto.js'
import { compareEntrants, ticketFor } from './lottery.js'
import type { Mempool } from './mempool.js'
import { revealerOf } from './randao.js'
import { type Block, signBlock, unsignedBlock } from './records.js'
import { activationDue, activeStake, hasActiveStake } from './state.js'
import { blockReadingWindow, transferOrderKey } from './validation.js'

/**
 * True while the head chain holds a non-final block that carries records or started counting
 * queued stake: votes are still needed.
 */
export function needsVotes(chain: Chain, head: BlockNode = chain.head): boolean {
  return chain.chainTo(head).some((n) => {
    if (n.block === undefined) return false
    if (n.block.readings.length > 0 || n.block.stakes.length > 0 || n.block.transfers.length > 0) return true
    const parent = chain.parentOf(n)
    return parent !== undefined && activationDue(chain.net.params, parent.state, n.slot, n.state.finalSlot)
  })
}

/**
 * The block to build on at `slot`: the head, or, when the head is already a candidate of `slot`
 * itself (another validator's timer fired a few ms earlier and its candidate arrived first), the
 * head's nearest ancestor from an earlier slot. Without this the later validator skipped its turn,
 * and its missing vote held finality back by whole slots (seen in a five-process trace).
 */
export function proposalBase(chain: Chain, slot: number): BlockNode | undefined {
  let n: BlockNode | undefined = chain.head
  while (n !== undefined && n.slot >= slot && n !== chain.root) n = chain.parentOf(n)
  return n === undefined || n.slot >= slot ? undefined : n
}

/**
 * Whether the votes of the last slot are still on their way: our base is a candidate of
 * `slot - 1` (that slot voted on our chain), yet the checkpoint those votes target, (its parent,
 * `slot - 1`), is not justified in our view. A candidate built now would carry an older source,
 * and its link could finalize nothing (FFG's k = 1 rule needs consecutive epochs): when most
 * candidates of a slot did so, finality slipped by two slots (seen under reading spam, where
 * candidates reached some peers 0.5-0.9 s into the next slot). The slot loop waits a little.
 */
export function votesPending(chain: Chain, slot: number): boolean {
  const base = proposalBase(chain, slot)
  return (
    base !== undefined && base !== chain.root && base.slot === slot - 1 && chain.sourceFor(slot, base).epoch < slot - 1
  )
}

/**
 * The candidate this validator proposes at `slot`, unsigned (the caller checks it, asks its
 * slashing protection, then signs it), or undefined when it has no weight or nothing to do (no
 * pending records and nothing left to finalize: the network goes quiet). Its FFG source is the
 * highest justified checkpoint on its parent's chain.
 */
export function buildCandidate(chain: Chain, mempool: Mempool, signer: Signer, slot: number): Block | undefined {
  const proposer = signer.publicKey
  const head = proposalBase(chain, slot)
  if (head === undefined) return undefined
  // The block rules apply to what we build: a reading dated after this slot's bound waits.
  const pending = mempool.pending(chain, head, blockReadingWindow(chain.net, slot), slot)
  const hasWork =
    pending.readings.length > 0 ||
    pending.stakes.length > 0 ||
    pending.transfers.length > 0 ||
    pending.evidence.length > 0 ||
    // Queued stake whose block we hold final: the next block shows it final (its source finalizes
    // the head's) and starts counting it.
    activationDue(chain.net.params, head.state, slot, Math.max(head.state.finalSlot, chain.root.slot)) ||
    needsVotes(chain, head)
  if (!hasWork) return undefined
  const weight = activeStake(chain.net.params, head.state, toHex(proposer), slot)
  const joining =
    !hasActiveStake(chain.net.params, head.state, slot) &&
    pending.stakes.some((s) => equalBytes(s.validator, proposer) && s.stake > 0)
  if (weight === 0 && !joining) return undefined
  const source = chain.sourceFor(slot, head)
  // The reveal follows our point after our own announcement in this block, if any.
  const own = pending.stakes.find((s) => equalBytes(s.validator, proposer))
  const entry = head.state.stakes.get(toHex(proposer))
  const from = own !== undefined ? { seq: own.seq, point: own.commit } : entry
  const reveal = from === undefined ? undefined : revealerOf(chain.net, signer).revealFor(from.seq, from.point)
  if (reveal === undefined) return undefined
  const byHex =
    <T>(key: (x: T) => string) =>
    (a: T, b: T) =>
      key(a) < key(b) ? -1 : 1
  // The votes that justified our source, then recent votes of validators whose taking part our
  // chain has not recorded lately (the inactivity leak must not take an honest validator's stake).
  const proof = chain.votesFor(source)
  const known = new Set(proof.map((h) => h.hashHex))
  const extra = chain
    .participationVotes(head, slot, source, chain.net.params.maxVotesPerBlock - proof.length)
    .filter((h) => !known.has(h.hashHex))
  const votes = [...proof, ...extra].sort(byHex((h) => h.hashHex))
  // Counts are bounded by the mempool; bytes are bounded here: halve the readings until it fits.
  let readings = pending.readings
  for (;;) {
    // Records in canonical order (a block rule): the order is no choice of the proposer.
    const block = unsignedBlock(chain.net, proposer, {
      height: head.height + 1,
      slot,
      parent: head.hash,
      readings: [...readings].sort(byHex((r) => r.idHex)),
      stakes: [...pending.stakes].sort(byHex((s) => toHex(s.validator))),
      transfers: [...pending.transfers].sort(byHex(transferOrderKey)),
      evidence: [...pending.evidence].sort(byHex((e) => e.idHex)),
      source,
      reveal,
      votes,
    })
    if (block.bytes.byteLength <= chain.net.params.maxBlockBytes || readings.length === 0) return block
    readings = readings.slice(0, Math.floor(readings.length / 2))
  }
}

/**
 * How many active validators draw a better ticket than `publicKey` on the block it would build on
 * at `slot` (0: the likely winner), counted up to `cap` (a flooded stake table has tens of
 * thousands: no need to draw every ticket to know we are far down). Used only to spread
 * publication over the first moments of the slot (the likely winner first), never to decide anything.
 */
export function proposalRank(chain: Chain, publicKey: Uint8Array, slot: number, cap: number): number {
  const base = proposalBase(chain, slot)
  if (base === undefined) return 0
  const p = chain.net.params
  const meHex = toHex(publicKey)
  const me = {
    ticket: ticketFor(base.state.mix, publicKey),
    weight: activeStake(p, base.state, meHex, slot) || 1,
    hash: publicKey,
  }
  let rank = 0
  for (const key of base.state.stakes.keys()) {
    if (rank >= cap) break
    const weight = activeStake(p, base.state, key, slot)
    if (key === meHex || weight === 0) continue
    const pk = Buffer.from(key, 'hex')
    if (compareEntrants({ ticket: ticketFor(base.state.mix, pk), weight, hash: pk }, me) < 0) rank++
  }
  return rank
}

/** `buildCandidate` signed at once: for tests and benchmarks that run without slashing protection. */
export function buildSignedCandidate(chain: Chain, mempool: Mempool, signer: Signer, slot: number): Block | undefined {
  const b = buildCandidate(chain, mempool, signer, slot)
  return b === undefined ? undefined : signBlock(chain.net, signer, b)
}
