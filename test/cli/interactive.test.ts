import { execFileSync } from 'node:child_process'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterEach, describe, expect, it } from 'vitest'
import { BIN, NODE22 } from '../helpers/cli.js'
import { waitFor } from '../helpers/peers.js'

// The real CLI in a real terminal: tmux on a private socket, driven with send-keys, read with
// capture-pane. `.ci/run` installs tmux when it is missing.
const SOCKET = `pos-peer-test-${process.pid}`
const tmux = (...args: string[]) => execFileSync('tmux', ['-L', SOCKET, ...args], { encoding: 'utf8' })
const screen = () => tmux('capture-pane', '-p', '-t', 'main', '-S', '-200')
const keys = (...k: string[]) => tmux('send-keys', '-t', 'main', ...k)

afterEach(() => {
  try {
    tmux('kill-server')
  } catch {
    // already gone
  }
})

describe('interactive terminal (tmux)', () => {
  it('auto-bpm under the menu, the cursor stays put while blocks arrive, a typo is cleared, final blocks, quit says what it does', async () => {
    const to = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const cmd = `${NODE22} ${BIN} --stake 10 --ephemeral --port 0 --network ttytest --slot-ms 300 --auto-bpm 400`
    tmux('new-session', '-d', '-s', 'main', '-x', '160', '-y', '50', `${cmd}; echo "pos-peer exited $?"; sleep 30`)
    await waitFor(() => screen().includes('what next?'), 30_000, 'the menu')
    expect(screen()).toMatch(/pos-peer\s+12D3Koo/)
    expect(screen()).toMatch(/stake\s+10/)
    expect(screen()).toMatch(/tokens\s+\d+ free \(block rewards; the open devnet/)
    expect(screen()).toMatch(/auto-bpm\s+a reading every 400 ms/)
    // The banner names the identity it opened (here none kept: --ephemeral).
    expect(screen()).toMatch(/data\s+in memory \(--ephemeral\): a new identity this run/)
    expect(screen()).toMatch(/data\s+in memory \(--ephemeral\)/)

    // --auto-bpm works while the menu waits: its readings land in our blocks, nothing typed.
    await waitFor(() => /#\d+ won by you .*[1-9] readings?/.test(screen()), 20_000, 'auto-bpm readings in a block')
    // Finality is announced in words.
    await waitFor(() => /#\d+ final \(yours\)/.test(screen()), 20_000, 'a final block announced')

    // The cursor stays where the user put it while new blocks redraw the menu.
    keys('Down', 'Down')
    await waitFor(() => /❯ Validators/.test(screen()), 10_000, 'the cursor on Validators')
    const blocksSeen = () => (screen().match(/won by you/g) ?? []).length
    const before = blocksSeen()
    await waitFor(() => blocksSeen() >= before + 3, 20_000, 'three more blocks (three redraws)')
    expect(screen()).toMatch(/❯ Validators/)
    keys('Enter')
    await waitFor(() => screen().includes('stake share'), 10_000, 'the validators table')
    expect(screen()).toMatch(/\(you\)\s+10\s+100\.0%/)

    // Enter BPM (two up from Validators, where the cursor still is): a typo first; the bad text
    // is cleared, so typing a good value after it needs no backspaces.
    await waitFor(() => /❯ Validators/.test(screen()), 10_000, 'the menu again, still on Validators')
    keys('Up', 'Up', 'Enter')
    await waitFor(() => screen().includes('BPM (20-300):'), 10_000, 'the BPM prompt')
    keys('abc', 'Enter')
    await waitFor(() => screen().includes('"abc" is not a whole number'), 10_000, 'the typo message')
    keys('999', 'Enter')
    await waitFor(() => screen().includes('999 is out of range'), 10_000, 'the range message')
    keys('72', 'Enter')
    await waitFor(() => screen().includes('reading 72 BPM sent'), 10_000, 'the reading sent')

    // Send tokens (two up from Enter BPM, wrapping): this devnet's tokens are block rewards. A bad
    // address and an amount beyond the balance are refused in place; then a confirmation.
    await waitFor(() => /❯ Enter BPM/.test(screen()), 10_000, 'the menu again, on Enter BPM')
    keys('Up', 'Up', 'Enter')
    await waitFor(() => screen().includes('Send to (peer id'), 10_000, 'the address prompt')
    keys('nobody', 'Enter')
    await waitFor(() => screen().includes('"nobody" is not a pos-peer address'), 10_000, 'the address message')
    keys(to, 'Enter')
    await waitFor(() => /Amount \(1-\d+\):/.test(screen()), 10_000, 'the amount prompt')
    keys('99999999', 'Enter')
    await waitFor(() => /Only \d+ free token\(s\) can be sent now/.test(screen()), 10_000, 'the balance message')
    keys('1', 'Enter')
    await waitFor(() => screen().includes(`Send 1 token(s) to ${to}?`), 10_000, 'the confirmation')
    keys('y', 'Enter')
    await waitFor(() => /sent 1 to 12D3.* \(nonce 1\)/.test(screen()), 10_000, 'the transfer sent')

    // Quit: the last entry, one down from Send tokens.
    await waitFor(() => /❯ Send tokens/.test(screen()), 10_000, 'the menu again, on Send tokens')
    keys('Down', 'Enter')
    await waitFor(() => screen().includes('pos-peer exited'), 15_000, 'exit')
    expect(screen()).toContain('pos-peer exited 0')
    // Quitting says what it does, at the default log level.
    expect(screen()).toMatch(/quit: leaving: stake 0 announced/)
    expect(screen()).toMatch(/left cleanly|gave up after 3 slots/)
  }, 120_000)
})
