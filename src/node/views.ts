import { toHex } from '../core/bytes.js'
import type { BlockNode } from '../core/chain.js'
import { addressOf } from '../core/crypto.js'
import { type Block, readingJson } from '../core/records.js'
import { activeValidators } from '../core/state.js'
import type { Peer } from './peer.js'

/** JSON views of chain objects, shared by --json output, the terminal and the HTTP API. */
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
    final,
  }
}

export const ref = (node: BlockNode) => ({ height: node.height, hash: node.hashHex })

export interface ValidatorRow {
  address: string
  stake: number
  stakeShare: number
  won: number
  winShare: number
  balance: number
  active: boolean
}

/** Validators as of the head: stake and its share, blocks won and their share, balance. */
export function validatorRows(peer: Peer): ValidatorRow[] {
  const head = peer.svc.chain.head
  const p = peer.net.params
  const active = activeValidators(p, head.state, Math.max(head.slot, peer.svc.currentSlot()))
  const totalStake = [...active.values()].reduce((a, b) => a + b, 0)
  let totalWon = 0
  for (const a of head.state.accounts.values()) totalWon += a.won
  const keys = new Set([...head.state.stakes.keys(), ...head.state.accounts.keys()])
  const rows: ValidatorRow[] = []
  for (const key of keys) {
    const stake = active.get(key) ?? 0
    const acc = head.state.accounts.get(key) ?? { balance: 0, won: 0 }
    rows.push({
      address: addressOf(Buffer.from(key, 'hex')),
      stake,
      stakeShare: totalStake === 0 ? 0 : stake / totalStake,
      won: acc.won,
      winShare: totalWon === 0 ? 0 : acc.won / totalWon,
      balance: acc.balance,
      active: stake > 0,
    })
  }
  return rows.sort((a, b) => b.stake - a.stake || b.won - a.won)
}

export const shortId = (id: string) => (id.length > 14 ? `${id.slice(0, 6)}…${id.slice(-6)}` : id)
export const pct = (x: number) => `${(x * 100).toFixed(1)}%`
