import { toHex } from '../core/bytes.js'
import type { BlockNode } from '../core/chain.js'
import { addressOf } from '../core/crypto.js'
import type { ChainConfig } from '../core/params.js'
import type { Block, Reading, Transfer } from '../core/records.js'
import { accountAt, activeValidators, holdings, isEjected, waitingStake } from '../core/state.js'

/**
 * What the views read: a read-only face of the node. The CLI, the HTTP API and metrics use these
 * named methods, never the node's parts.
 */
export interface NodeView {
  readonly config: ChainConfig
  readonly peerId: string
  head(): BlockNode
  finalized(): BlockNode
  currentSlot(): number
}

/**
 * The JSON views of chain objects: the one place they are made, for --json output, the terminal,
 * the SSE stream and the HTTP API (JSON only at the edges, never hashed).
 */
export function readingJson(r: Reading) {
  return { id: r.idHex, author: addressOf(r.author), bpm: r.bpm, time: new Date(r.time).toISOString() }
}

export function transferJson(t: Transfer) {
  return { id: t.idHex, from: addressOf(t.from), to: addressOf(t.to), amount: t.amount, nonce: t.nonce }
}

export function blockView(x: BlockNode | Block, final: boolean) {
  const b = 'children' in x ? x.block : x
  return {
    height: x.height,
    hash: x.hashHex,
    parent: b === undefined ? null : toHex(b.parent),
    slot: x.slot,
    proposer: b === undefined ? null : addressOf(b.proposer),
    readings: (b?.readings ?? []).map(readingJson),
    stakes: (b?.stakes ?? []).map((st) => ({ validator: addressOf(st.validator), stake: st.stake, seq: st.seq })),
    transfers: (b?.transfers ?? []).map(transferJson),
    final,
  }
}

export type BlockView = ReturnType<typeof blockView>

/** A block's view as this node sees it now (final when at or below the finalized height). */
export function blockViewOn(node: NodeView, x: BlockNode | Block): BlockView {
  return blockView(x, x.height <= node.finalized().height)
}

export const ref = (node: BlockNode) => ({ height: node.height, hash: node.hashHex })

export interface ValidatorRow {
  address: string
  /** The stake that counts now. */
  stake: number
  /** Stake announced that does not count yet (its block not final yet, the activation delay, the churn limit). */
  waiting: number
  stakeShare: number
  won: number
  winShare: number
  /** Every token the account holds: free + bonded + unbonding. */
  balance: number
  free: number
  bonded: number
  /** Tokens on their way back to free (genesis networks). */
  unbonding: number
  active: boolean
  /** Convicted of a slashable vote by evidence in a block: stake and balance burned, key barred. */
  slashed: boolean
  /** Its stake taken by the inactivity leak (no vote on the chain while finality stalled), not announced since. */
  ejected: boolean
}

/** Validators as of the head: stake and its share, blocks won and their share, balance. */
export function validatorRows(node: NodeView): ValidatorRow[] {
  const head = node.head()
  const p = node.config.params
  const slot = Math.max(head.slot, node.currentSlot())
  const active = activeValidators(p, head.state, slot)
  const totalStake = [...active.values()].reduce((a, b) => a + b, 0)
  let totalWon = 0
  for (const a of head.state.accounts.values()) totalWon += a.won
  const keys = new Set([...head.state.stakes.keys(), ...head.state.accounts.keys()])
  const rows: ValidatorRow[] = []
  for (const key of keys) {
    const stake = active.get(key) ?? 0
    const acc = accountAt(head.state, key, slot)
    rows.push({
      address: addressOf(Buffer.from(key, 'hex')),
      stake,
      waiting: waitingStake(head.state.stakes.get(key)),
      stakeShare: totalStake === 0 ? 0 : stake / totalStake,
      won: acc.won,
      winShare: totalWon === 0 ? 0 : acc.won / totalWon,
      balance: holdings(acc),
      free: acc.free,
      bonded: acc.bonded,
      unbonding: holdings(acc) - acc.free - acc.bonded,
      active: stake > 0,
      slashed: head.state.stakes.get(key)?.slashed === true,
      ejected: isEjected(head.state.stakes.get(key)),
    })
  }
  return rows.sort((a, b) => b.stake - a.stake || b.won - a.won)
}

/** Every account as of the head (and the current slot): balances, unbonding with release slots, nonce. */
export function accountRows(node: NodeView) {
  const head = node.head()
  const slot = Math.max(head.slot, node.currentSlot())
  return [...head.state.accounts.keys()]
    .map((key) => {
      const a = accountAt(head.state, key, slot)
      return {
        address: addressOf(Buffer.from(key, 'hex')),
        free: a.free,
        bonded: a.bonded,
        unbonding: a.unbonding.map((u) => ({ amount: u.amount, releaseSlot: u.release })),
        total: holdings(a),
        nonce: a.nonce,
      }
    })
    .sort((a, b) => b.total - a.total || (a.address < b.address ? -1 : 1))
}

export type AccountRow = ReturnType<typeof accountRows>[number]
