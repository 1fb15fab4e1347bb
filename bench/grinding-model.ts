// The lottery-grinding model shared by bench/grinding.ts and test/core/randao.test.ts: rounds of
// the real lottery (ticketFor, lotteryWinner) on a seed that is either the parent's RANDAO mix
// (what pos-peer does) or, for comparison, the parent's block hash (what it did before).
import { utf8 } from '../src/core/bytes.js'
import { sha256 } from '../src/core/crypto.js'
import { lotteryWinner, ticketFor } from '../src/core/lottery.js'
import { nextMix, RevealChain } from '../src/core/randao.js'

export type Seed = 'mix' | 'hash'
export type Strategy =
  /** The attacker publishes every block it wins, as built. */
  | 'honest'
  /** It builds `versions` different blocks (contents) and publishes the one best for its next turn. */
  | 'content'
  /** It withholds a block it won when the runner-up's block would make it win the next slot. */
  | 'withhold'

export interface GrindingOptions {
  readonly rounds: number
  readonly seed: Seed
  readonly strategy: Strategy
  readonly versions?: number
  /** Attacker's stake first, then the honest validators' (default 10 and 9 x 10: 10%). */
  readonly stakes?: readonly number[]
  readonly salt?: string
}

/** Share of canonical blocks the attacker (validator 0) gets. */
export function grindingShare(o: GrindingOptions): { share: number; won: number; rounds: number } {
  const stakes = o.stakes ?? [10, 10, 10, 10, 10, 10, 10, 10, 10, 10]
  const salt = o.salt ?? 'grinding'
  const keys = stakes.map((_, i) => sha256(utf8(`${salt} key ${i}`)))
  // Each validator's reveal chain, long enough for every block it could make.
  const chains = stakes.map((_, i) => new RevealChain(sha256(utf8(`${salt} seed ${i}`)), o.rounds + 1))
  const points = chains.map((c) => c.commit)
  const versions = o.versions ?? 64
  let seed = sha256(utf8(`${salt} genesis`))
  let won = 0
  const winnerOn = (s: Uint8Array, exclude = -1) =>
    (
      lotteryWinner(
        keys.map((k, i) => ({ i, ticket: ticketFor(s, k), weight: stakes[i], hash: k })).filter((e) => e.i !== exclude),
      ) as { i: number }
    ).i
  // The seed the next slot draws on after validator `i`'s block (content `v`) on `s`.
  const after = (s: Uint8Array, i: number, v: number) =>
    o.seed === 'mix'
      ? nextMix(s, chains[i].revealFor(points[i]) as Uint8Array)
      : sha256(new Uint8Array([...s, i, v & 255, v >> 8]))
  const publish = (s: Uint8Array, i: number, next: Uint8Array) => {
    if (o.seed === 'mix') points[i] = chains[i].revealFor(points[i]) as Uint8Array
    if (i === 0) won++
    void s
    return next
  }
  for (let r = 0; r < o.rounds; r++) {
    const w = winnerOn(seed)
    if (w !== 0 || o.strategy === 'honest') {
      seed = publish(seed, w, after(seed, w, 0))
      continue
    }
    if (o.strategy === 'content') {
      let pick = after(seed, 0, 0)
      for (let v = 0; v < versions; v++) {
        const next = after(seed, 0, v)
        if (winnerOn(next) === 0) {
          pick = next
          break
        }
      }
      seed = publish(seed, 0, pick)
      continue
    }
    // withhold: publish unless our block loses the next slot and the runner-up's would win it for us.
    const mine = after(seed, 0, 0)
    const runnerUp = winnerOn(seed, 0)
    const theirs = after(seed, runnerUp, 0)
    if (winnerOn(mine) !== 0 && winnerOn(theirs) === 0) seed = publish(seed, runnerUp, theirs)
    else seed = publish(seed, 0, mine)
  }
  return { share: won / o.rounds, won, rounds: o.rounds }
}
