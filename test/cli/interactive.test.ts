import { execFileSync } from 'node:child_process'
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
  it('enter a BPM and see the block, open validators, a typo gets a message and the prompt again, quit', async () => {
    const cmd = `${NODE22} ${BIN} --stake 10 --ephemeral --port 0 --network ttytest --slot-ms 300`
    tmux('new-session', '-d', '-s', 'main', '-x', '160', '-y', '50', `${cmd}; echo "pos-peer exited $?"; sleep 30`)
    await waitFor(() => screen().includes('what next?'), 30_000, 'the menu')
    expect(screen()).toMatch(/pos-peer\s+12D3Koo/)
    expect(screen()).toMatch(/stake\s+10/)

    // Enter BPM (first entry): a typo first.
    keys('Enter')
    await waitFor(() => screen().includes('BPM (20-300):'), 10_000, 'the BPM prompt')
    keys('abc', 'Enter')
    await waitFor(() => screen().includes('"abc" is not a whole number'), 10_000, 'the typo message')
    expect(screen()).toContain('BPM (20-300):')
    keys('BSpace', 'BSpace', 'BSpace', '999', 'Enter')
    await waitFor(() => screen().includes('999 is out of range'), 10_000, 'the range message')
    keys('BSpace', 'BSpace', 'BSpace', '72', 'Enter')
    await waitFor(() => screen().includes('reading 72 BPM sent'), 10_000, 'the reading sent')
    await waitFor(() => /#\d+ won by you .*1 reading/.test(screen()), 20_000, 'the block announcement')
    expect(screen()).toMatch(/you won #\d+/)

    // Validators: third entry.
    await waitFor(() => screen().includes('what next?'), 10_000, 'the menu again')
    keys('Down', 'Down', 'Enter')
    await waitFor(() => screen().includes('stake share'), 10_000, 'the validators table')
    expect(screen()).toMatch(/\(you\)\s+10\s+100\.0%/)

    // Quit: last entry (the list wraps around).
    await waitFor(() => screen().includes('what next?'), 10_000, 'the menu again')
    keys('Up', 'Enter')
    await waitFor(() => screen().includes('pos-peer exited'), 15_000, 'exit')
    expect(screen()).toContain('pos-peer exited 0')
    // Quitting says what it does, at the default log level.
    expect(screen()).toMatch(/quit: leaving: stake 0 announced/)
    expect(screen()).toMatch(/left cleanly/)
  }, 120_000)
})
