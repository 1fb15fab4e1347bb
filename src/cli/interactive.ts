import inquirer from 'inquirer'
import { publicKeyOfAddress } from '../core/crypto.js'
import { type NetworkParams, slotStart } from '../core/params.js'
import { bpmProblem } from '../core/validation.js'
import type { Peer } from '../node/peer.js'
import { pct, renderTable, shortId } from './format.js'
import { type MenuChoice, menu } from './menu.js'
import type { CliOptions } from './options.js'
import { attachOutput } from './output.js'

type Action = 'bpm' | 'chain' | 'validators' | 'peers' | 'stake' | 'send' | 'quit'

/** HH:MM:SS local time. */
const clockTime = (ms: number) => new Date(ms).toTimeString().slice(0, 8)

const isAbort = (err: unknown) =>
  err instanceof Error && (err.name === 'AbortPromptError' || err.name === 'ExitPromptError')

/**
 * A typed BPM: an error message or true (inquirer shows the message, asks again). This parses a
 * whole number; the range is the core's rule (bpmProblem, as validateReading applies it).
 */
export function checkBpmInput(text: string, params: NetworkParams): string | true {
  const t = text.trim()
  if (t === '') return 'Type a heart rate, e.g. 72'
  if (!/^-?\d{1,15}$/.test(t)) return `"${t.slice(0, 20)}" is not a whole number: type a heart rate, e.g. 72`
  return bpmProblem(params, Number(t)) ?? true
}

export function checkStakeInput(text: string, params: NetworkParams, limit?: number): string | true {
  const t = text.trim()
  if (!/^\d+$/.test(t) || !Number.isSafeInteger(Number(t)))
    return 'Stake must be a whole number >= 0 (0 leaves the validator set)'
  if (Number(t) > params.maxStake) return `Stake must be at most ${params.maxStake} (this network's cap per validator)`
  if (limit !== undefined && Number(t) > limit)
    return `Stake must be at most ${limit}: the tokens this account holds (free + bonded)`
  return true
}

/** The address prompt of "Send tokens": a peer id, not this peer's own. */
export function checkAddressInput(text: string, self: string): string | true {
  try {
    publicKeyOfAddress(text)
  } catch (err) {
    return (err as Error).message
  }
  return text.trim() === self ? "That is this peer's own address" : true
}

/** The amount prompt of "Send tokens": a whole number from 1 to what can be spent. */
export function checkAmountInput(text: string, spendable: number): string | true {
  const t = text.trim()
  if (!/^\d{1,16}$/.test(t) || Number(t) < 1) return 'Amount must be a whole number of at least 1'
  if (Number(t) > spendable) return `Only ${spendable} free token(s) can be sent now`
  return true
}

const CHOICES: readonly MenuChoice<Action>[] = [
  { name: 'Enter BPM', value: 'bpm' },
  { name: 'Show chain', value: 'chain' },
  { name: 'Validators', value: 'validators' },
  { name: 'Peers', value: 'peers' },
  { name: 'Change stake', value: 'stake' },
  { name: 'Send tokens', value: 'send' },
  { name: 'Quit', value: 'quit' },
]

/** An input prompt; after a validation error the bad text is cleared (no "7x2" after "7x"). */
async function ask(message: string, validate: (t: string) => string | true): Promise<string> {
  const { answer } = await inquirer.prompt<{ answer: string }>([
    { type: 'input', name: 'answer', message, validate, theme: { validationFailureMode: 'clear' } },
  ])
  return answer
}

/**
 * The menu loop. Network events print above the menu: the menu prompt is aborted, the lines are
 * printed, and the menu is drawn again on the choice the user had reached. While the user types
 * (BPM, stake) events wait until Enter.
 */
export async function runInteractive(
  peer: Peer,
  o: CliOptions,
  banner: { httpUrl?: string; profile: string },
): Promise<void> {
  const p = peer.config.params
  const print = (s: string) => process.stdout.write(`${s}\n`)
  const pending: string[] = []
  let abortMenu: (() => void) | undefined
  let syncLine: string | undefined
  let lastProgressDraw = 0
  const detach = attachOutput(
    peer,
    'text',
    (line) => {
      pending.push(line)
      abortMenu?.()
    },
    {
      // The sync progress is the menu's own title line while catching up: redrawn, not repeated.
      progress: (line) => {
        syncLine = line
        // At most four redraws a second, however fast the batches come (and one when it ends).
        const now = Date.now()
        if (line !== undefined && now - lastProgressDraw < 250) return
        lastProgressDraw = now
        abortMenu?.()
      },
    },
  )
  const flush = () => {
    for (const line of pending.splice(0)) print(line)
  }

  print(`pos-peer  ${peer.peerId}`)
  print(`network   ${o.network} (${peer.config.idHex.slice(0, 16)}), slot ${p.slotMs} ms`)
  print(`listening ${peer.listenAddrs().join(', ')}`)
  print(`data      ${banner.profile}`)
  print(`stake     ${o.stake}${o.stake === 0 ? ' (observer)' : ''}`)
  print(`tokens    ${fundsLine(peer)}`)
  if (banner.httpUrl !== undefined) print(`dashboard ${banner.httpUrl}/`)
  if (o.autoBpm !== undefined) print(`auto-bpm  a reading every ${o.autoBpm} ms`)
  const n = peer.connectedPeers().length
  print(
    n === 0
      ? 'peers     none yet: waiting (others on this machine find this one by themselves)'
      : `peers     ${n} connected`,
  )

  let active = 0
  try {
    for (;;) {
      flush()
      const ac = new AbortController()
      abortMenu = () => ac.abort()
      let action: Action
      try {
        const title =
          syncLine ??
          `#${peer.head().height} · final #${peer.finalized().height} · ${peer.connectedPeers().length} peer(s)`
        action = await menu(
          {
            message: `${title} · what next?`,
            choices: CHOICES,
            active,
            onMove: (i) => {
              active = i
            },
          },
          { signal: ac.signal, clearPromptOnDone: true },
        )
      } catch (err) {
        if (ac.signal.aborted) continue
        if (isAbort(err)) return
        throw err
      } finally {
        abortMenu = undefined
      }
      if (action === 'quit') return
      if (action === 'bpm') {
        const bpm = await ask(`BPM (${p.minBpm}-${p.maxBpm}):`, (t) => checkBpmInput(t, p))
        try {
          const r = await peer.submitReading(Number(bpm.trim()))
          print(`reading ${Number(bpm.trim())} BPM sent (${r.idHex.slice(0, 12)}); it will be in the next block`)
        } catch (err) {
          print(`reading refused: ${(err as Error).message}`)
        }
      } else if (action === 'stake') {
        const stake = await ask('New stake:', (t) => checkStakeInput(t, p, peer.funds().stakeLimit))
        try {
          await peer.setStake(Number(stake.trim()))
          print(`stake ${Number(stake.trim())} announced; it counts once it is in a block`)
        } catch (err) {
          print(`stake refused: ${(err as Error).message}`)
        }
      } else if (action === 'send') {
        const { free } = peer.funds()
        if (free < 1) {
          print(`nothing to send: ${fundsLine(peer)}`)
          continue
        }
        const to = (await ask('Send to (peer id, 12D3KooW...):', (t) => checkAddressInput(t, peer.peerId))).trim()
        const amount = Number(await ask(`Amount (1-${free}):`, (t) => checkAmountInput(t, peer.funds().free)))
        const { ok } = await inquirer.prompt<{ ok: boolean }>([
          { type: 'confirm', name: 'ok', message: `Send ${amount} token(s) to ${to}?`, default: false },
        ])
        if (!ok) {
          print('not sent')
          continue
        }
        try {
          const t = await peer.submitTransfer(to, amount)
          print(`sent ${amount} to ${shortId(to)} (nonce ${t.nonce}); it lands with the next block`)
        } catch (err) {
          print(`transfer refused: ${(err as Error).message}`)
        }
      } else if (action === 'chain') {
        const rows = (await peer.recentBlocks(10)).map((b) => [
          b.height,
          clockTime(slotStart(p, b.slot)),
          shortId(b.proposer ?? '-'),
          b.readings.length,
          b.hash.slice(0, 12),
          b.final ? 'yes' : 'not yet',
        ])
        print(
          rows.length === 0
            ? 'no blocks yet'
            : renderTable(['height', 'time', 'proposer', 'readings', 'hash', 'final'], rows),
        )
      } else if (action === 'validators') {
        const rows = peer
          .validators()
          .map((v) => [
            shortId(v.address) +
              (v.address === peer.peerId ? ' (you)' : '') +
              (v.slashed ? ' SLASHED' : v.ejected ? ' EJECTED (inactive)' : ''),
            v.waiting > 0 ? `${v.stake} (+${v.waiting} waiting)` : v.stake,
            pct(v.stakeShare),
            v.won,
            pct(v.winShare),
            v.free,
            v.bonded,
            v.unbonding,
          ])
        print(
          rows.length === 0
            ? 'no validators yet'
            : renderTable(
                ['validator', 'stake', 'stake share', 'won', 'win share', 'free', 'bonded', 'unbonding'],
                rows,
              ),
        )
      } else if (action === 'peers') {
        const conns = peer.connections()
        print(
          conns.length === 0
            ? 'no peers connected'
            : renderTable(
                ['peer', 'listen address (or where it connected from)', 'direction', 'connected'],
                conns.map((c) => [
                  shortId(c.peerId),
                  c.addr,
                  c.direction,
                  `${Math.round((Date.now() - c.since) / 1000)} s`,
                ]),
              ),
        )
      }
    }
  } catch (err) {
    if (isAbort(err)) return
    throw err
  } finally {
    detach()
  }
}

/** This peer's tokens in one line: free (minus pending transfers) and, in a genesis network, stakeable. */
function fundsLine(peer: Peer): string {
  const f = peer.funds()
  const pending = f.pending > 0 ? ` (${f.pending} in pending transfers)` : ''
  return peer.config.ledger
    ? `${f.free} free${pending}, ${f.stakeLimit ?? 0} stakeable (free + bonded), genesis network`
    : `${f.free} free${pending} (block rewards; the open devnet: stake is self-declared)`
}
