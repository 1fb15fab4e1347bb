import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import { type Browser, chromium } from 'playwright-core'
import { afterAll, describe, expect, it } from 'vitest'
import { CliPeer } from '../helpers/cli.js'
import { waitFor } from '../helpers/peers.js'

/**
 * The dashboard in a real browser: Debian's Chromium, headless, driven by playwright-core, against
 * a three-peer network of real `pos-peer` processes. The screenshot is kept in test-artifacts/.
 */
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium'
const ARTIFACTS = join(process.cwd(), 'test-artifacts')
const NET = ['--network', 'dashtest', '--slot-ms', '500', '--port', '0', '--ephemeral']

const procs: CliPeer[] = []
let browser: Browser | undefined

afterAll(async () => {
  await browser?.close()
  for (const p of procs) p.kill('SIGKILL')
  for (const p of procs) await p.exit().catch(() => {})
})

// In CI Chromium is installed by .ci/run, so a missing one fails there instead of skipping.
describe.skipIf(!existsSync(CHROMIUM) && process.env.CI !== 'true')('dashboard in Chromium (headless)', () => {
  it('shows the live chain, takes a BPM through the form, and shows it in a block', async () => {
    const a = new CliPeer([...NET, '--stake', '30', '--http', '127.0.0.1:0'])
    procs.push(a)
    await a.ready()
    for (const stake of ['20', '10']) {
      const p = new CliPeer([...NET, '--stake', stake, '--bootstrap', a.addr])
      procs.push(p)
      await p.ready()
    }
    await waitFor(() => a.of('peer:connect').length >= 2, 30_000, 'three peers connected')
    const url = a.of('ready')[0].http as string
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)

    browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] })
    const page = await browser.newPage({ viewport: { width: 1280, height: 860 } })
    const problems: string[] = []
    page.on('pageerror', (err) => problems.push(err.message))
    page.on('requestfailed', (req) => problems.push(`request failed: ${req.url()}`))
    await page.goto(`${url}/`)
    await page.locator('#live.on').waitFor({ timeout: 20_000 })
    await expect.poll(() => page.locator('#peer-count').textContent(), { timeout: 20_000 }).toBe('2')

    // Inline validation: a bad value is refused in the page, nothing is sent.
    await page.fill('#bpm', '7000')
    await page.click('#reading-form button')
    await expect.poll(() => page.locator('#bpm-message').textContent()).toMatch(/between 20 and 300/)
    expect(await page.locator('#bpm').getAttribute('aria-invalid')).toBe('true')
    expect(a.of('reading')).toHaveLength(0)

    await page.fill('#bpm', '123')
    await page.click('#reading-form button')
    await page.locator('#blocks .bpm.mine', { hasText: '123' }).first().waitFor({ timeout: 30_000 })
    const block = page.locator('#blocks li', { has: page.locator('.bpm.mine', { hasText: '123' }) })
    await expect.poll(() => block.first().getAttribute('class'), { timeout: 30_000 }).toContain('final')
    await expect.poll(() => page.locator('#bpm-message').textContent()).toMatch(/your reading 123 is in block #\d+/)
    // The same reading is final on the other peers too.
    await waitFor(() => procs.every((p) => p.finalReadingBpms().includes(123)), 30_000, 'final on all three')
    // The chart has a bar pair per validator.
    await expect.poll(() => page.locator('#shares rect.stake').count(), { timeout: 10_000 }).toBe(3)
    // Each row's hover text gives the numbers behind it: stake counting and the account's tokens.
    await expect
      .poll(() => page.locator('#shares title').allTextContents(), { timeout: 10_000 })
      .toEqual(
        expect.arrayContaining([
          expect.stringMatching(/^stake \d+ counting.*; tokens: \d+ free, 0 bonded, 0 unbonding$/),
        ]),
      )

    await mkdir(ARTIFACTS, { recursive: true })
    const shot = join(ARTIFACTS, 'dashboard.png')
    await page.screenshot({ path: shot, fullPage: true })
    expect(existsSync(shot)).toBe(true)
    expect(problems).toEqual([])
  }, 180_000)
})
