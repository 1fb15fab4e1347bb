import { type ClientRequest, request } from 'node:http'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { PeerMetrics } from '../../src/api/metrics.js'
import { ApiServer, MAX_EVENT_STREAMS, MAX_EVENT_STREAMS_PER_CLIENT } from '../../src/api/server.js'
import type { Peer } from '../../src/node/peer.js'
import { testNetwork } from '../helpers/fixtures.js'
import { TestNet, waitFor } from '../helpers/peers.js'

const net = testNetwork({ slotMs: 250, stakeTtlSlots: 400 })
let tn: TestNet
let a: Peer
let b: Peer
let api: ApiServer
let base: string
let metrics: PeerMetrics

beforeAll(async () => {
  tn = new TestNet(net)
  metrics = new PeerMetrics()
  a = await tn.start(30, { metrics: metrics.libp2p() })
  b = await tn.start(10)
  api = await ApiServer.start(a, { host: '127.0.0.1', port: 0, metrics })
  metrics.attach(a)
  base = api.url
  await waitFor(() => a.connectedPeers().length > 0, 30_000, 'a and b connected')
}, 60_000)

afterAll(async () => {
  metrics?.detach()
  await api?.close()
  await tn?.stopAll()
})

async function get(path: string) {
  const res = await fetch(`${base}${path}`)
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

async function post(path: string, body: string, type = 'application/json') {
  const res = await fetch(`${base}${path}`, { method: 'POST', headers: { 'content-type': type }, body })
  return { status: res.status, body: (await res.json()) as Record<string, unknown> }
}

type BlockJson = { height: number; hash: string; final: boolean; readings: { id: string; bpm: number }[] }

describe('HTTP API', () => {
  it('GET /api/status: peer, network, slot, head, finalized, peers, stake', async () => {
    const [slotBefore, headBefore] = [a.currentSlot(), a.head().height]
    const { status, body } = await get('/api/status')
    const [slotAfter, headAfter] = [a.currentSlot(), a.head().height]
    expect(status).toBe(200)
    expect(body.peerId).toBe(a.peerId)
    expect((body.network as { id: string }).id).toBe(net.idHex)
    expect(body.slot).toBeGreaterThanOrEqual(slotBefore)
    expect(body.slot).toBeLessThanOrEqual(slotAfter)
    expect(body.stake).toBe(30)
    expect(body.peers).toBe(a.connectedPeers().length)
    const head = body.head as { height: number; hash: string }
    expect(head.height).toBeGreaterThanOrEqual(headBefore)
    expect(head.height).toBeLessThanOrEqual(headAfter)
    expect(head.hash).toMatch(/^[0-9a-f]{64}$/)
    expect((body.finalized as { height: number }).height).toBeLessThanOrEqual(head.height)
  })

  it('transfers and accounts: 202 for one that can be paid, a JSON 400 for every other; it lands', async () => {
    // Block rewards are this devnet's only tokens: wait until `a` has won a few.
    await post('/api/readings', JSON.stringify({ bpm: 64 }))
    await waitFor(() => a.funds().free >= 3, 30_000, 'rewards for a')
    const bad: [string, number, string][] = [
      [JSON.stringify({ to: b.peerId, amount: 10 ** 9 }), 400, 'INSUFFICIENT_BALANCE'],
      [JSON.stringify({ to: 'nobody', amount: 1 }), 400, 'BAD_ADDRESS'],
      [JSON.stringify({ to: a.peerId, amount: 1 }), 400, 'SELF'],
      [JSON.stringify({ to: b.peerId, amount: 0 }), 400, 'BAD_AMOUNT'],
      [JSON.stringify({ to: b.peerId, amount: '2' }), 400, 'BAD_REQUEST'],
      [JSON.stringify({ to: b.peerId }), 400, 'BAD_REQUEST'],
    ]
    for (const [body, code, error] of bad) {
      const r = await post('/api/transfers', body)
      expect([r.status, r.body.error], body).toEqual([code, error])
      expect(typeof r.body.message).toBe('string')
    }
    const before = (await get('/api/accounts')).body.accounts as { address: string; free: number; nonce: number }[]
    const bFree = before.find((x) => x.address === b.peerId)?.free ?? 0
    const { status, body } = await post('/api/transfers', JSON.stringify({ to: b.peerId, amount: 2 }))
    expect(status).toBe(202)
    expect(body).toMatchObject({ from: a.peerId, to: b.peerId, amount: 2, nonce: 1 })
    await waitFor(
      () => (a.finalized().state.accounts.get(a.publicKeyHex)?.nonce ?? 0) === 1,
      30_000,
      'the transfer final',
    )
    const after = (await get('/api/accounts')).body
    expect(after.ledger).toBe(false)
    const accounts = after.accounts as { address: string; free: number; bonded: number; nonce: number }[]
    expect(accounts.find((x) => x.address === a.peerId)?.nonce).toBe(1)
    expect(accounts.find((x) => x.address === b.peerId)?.free).toBeGreaterThanOrEqual(bFree + 2)
    const v = (await get('/api/validators')).body.validators as { address: string; free: number; bonded: number }[]
    expect(v.find((x) => x.address === a.peerId)).toMatchObject({ bonded: 0 })
  })

  it('POST /api/readings: 202 with its id; the reading lands in a block the block routes return', async () => {
    const { status, body } = await post('/api/readings', JSON.stringify({ bpm: 73 }))
    expect(status).toBe(202)
    const id = body.id as string
    expect(id).toMatch(/^[0-9a-f]{64}$/)
    expect(body.bpm).toBe(73)
    await waitFor(() => a.chain.finalReadings.has(id), 30_000, 'reading final')
    const { body: range } = await get('/api/blocks?from=1&limit=100')
    const blocks = range.blocks as BlockJson[]
    expect(blocks.map((x) => x.height)).toEqual(blocks.map((_, i) => i + 1))
    const holder = blocks.find((x) => x.readings.some((r) => r.id === id)) as BlockJson
    expect(holder.final).toBe(true)
    const byHeight = await get(`/api/blocks/${holder.height}`)
    const byHash = await get(`/api/blocks/${holder.hash}`)
    expect(byHeight.body.hash).toBe(holder.hash)
    expect(byHash.body.height).toBe(holder.height)
    const latest = await get('/api/blocks?limit=3')
    const newest = latest.body.blocks as BlockJson[]
    expect(newest.length).toBeGreaterThan(0)
    expect(newest[0].height).toBeGreaterThanOrEqual(newest.at(-1)?.height ?? 0)
  })

  it('bad input gets 400/404/413 with a JSON error, never a 500', async () => {
    const cases: [string, Promise<{ status: number; body: Record<string, unknown> }>, number][] = [
      ['bpm as text', post('/api/readings', '{"bpm":"x"}'), 400],
      ['bpm as a numeric string', post('/api/readings', '{"bpm":"72"}'), 400],
      ['bpm out of range', post('/api/readings', '{"bpm":7000}'), 400],
      ['bpm not whole', post('/api/readings', '{"bpm":72.5}'), 400],
      ['no bpm', post('/api/readings', '{}'), 400],
      ['extra field', post('/api/readings', '{"bpm":72,"x":1}'), 400],
      ['broken JSON', post('/api/readings', '{"bpm":'), 400],
      ['a JSON array', post('/api/readings', '[72]'), 400],
      ['huge body', post('/api/readings', JSON.stringify({ bpm: 72, pad: 'x'.repeat(10_000) })), 413],
      ['limit 0', get('/api/blocks?limit=0'), 400],
      ['limit too big', get('/api/blocks?limit=1000'), 400],
      ['from negative', get('/api/blocks?from=-1'), 400],
      ['from text', get('/api/blocks?from=abc'), 400],
      ['unknown query', get('/api/blocks?x=1'), 400],
      ['bad block id', get('/api/blocks/not-a-hash'), 400],
      ['unknown height', get('/api/blocks/999999999'), 404],
      ['unknown hash', get(`/api/blocks/${'ab'.repeat(32)}`), 404],
      ['unknown route', get('/api/nope'), 404],
    ]
    for (const [what, res, expected] of cases) {
      const { status, body } = await res
      expect(status, what).toBe(expected)
      expect(typeof body.error, what).toBe('string')
      expect(typeof body.message, what).toBe('string')
    }
    const text = await post('/api/readings', 'bpm=72', 'text/plain')
    expect(text.status).toBe(400)
  })

  it('GET /api/validators and /api/peers', async () => {
    // b's stake counts once its activation delay is over (docs/PROTOCOL.md section 3).
    await waitFor(
      () => a.validators().every((v) => v.waiting === 0) && a.validators().length >= 2,
      30_000,
      'both stakes counting',
    )
    const { body } = await get('/api/validators')
    const rows = body.validators as { address: string; stake: number; stakeShare: number; waiting: number }[]
    const mine = rows.find((r) => r.address === a.peerId)
    expect(mine?.stake).toBe(30)
    expect(mine?.stakeShare).toBeCloseTo(0.75)
    const peers = (await get('/api/peers')).body.peers as { peerId: string; addr: string }[]
    expect(peers.map((p) => p.peerId)).toContain(b.peerId)
    expect(peers[0].addr).toMatch(/^\/ip4\/127\.0\.0\.1\/tcp\//)
  })

  it('GET /api/events streams blocks as server-sent events', async () => {
    const ctl = new AbortController()
    const res = await fetch(`${base}/api/events`, { signal: ctl.signal })
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/)
    const reader = (res.body as ReadableStream<Uint8Array>).getReader()
    const { body } = await post('/api/readings', JSON.stringify({ bpm: 91 }))
    let text = ''
    const blockFrame = () =>
      text.split('\n\n').find((f) => f.startsWith('event: block') && f.includes(body.id as string))
    const deadline = Date.now() + 20_000
    while (blockFrame() === undefined && Date.now() < deadline) {
      const { value, done } = await reader.read()
      if (done) break
      text += new TextDecoder().decode(value)
    }
    ctl.abort()
    expect(text).toContain('event: reading')
    const frame = blockFrame()
    expect(frame).toBeDefined()
    const data = JSON.parse((frame as string).split('\ndata: ')[1]) as BlockJson
    expect(data.readings.map((r) => r.bpm)).toContain(91)
  })

  it(`GET /api/events: ${MAX_EVENT_STREAMS_PER_CLIENT} streams per client address (429), ${MAX_EVENT_STREAMS} in all (503)`, async () => {
    const port = Number(new URL(base).port)
    const opened: ClientRequest[] = []
    // Each client a loopback address of its own (127.0.0.2, ...): the per-client cap is by address.
    const open = (client: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/api/events', localAddress: client }, (res) => {
          if (res.statusCode !== 200) res.resume()
          resolve(res.statusCode ?? 0)
        })
        req.on('error', reject)
        req.end()
        opened.push(req)
      })
    try {
      const mine = await Promise.all(Array.from({ length: MAX_EVENT_STREAMS_PER_CLIENT }, () => open('127.0.0.2')))
      expect(mine.every((s) => s === 200)).toBe(true)
      expect(await open('127.0.0.2')).toBe(429)
      // Others still get in, up to the overall cap.
      const clients = Math.ceil(MAX_EVENT_STREAMS / MAX_EVENT_STREAMS_PER_CLIENT)
      const rest: Promise<number>[] = []
      for (let c = 1; c < clients; c++)
        for (let i = 0; i < MAX_EVENT_STREAMS_PER_CLIENT; i++) rest.push(open(`127.0.0.${3 + c}`))
      expect((await Promise.all(rest)).every((s) => s === 200)).toBe(true)
      expect(await open('127.0.0.99')).toBe(503)
    } finally {
      for (const r of opened) r.destroy()
    }
    // Closed streams free their places.
    await waitFor(
      async () => (await open('127.0.0.2').finally(() => opened.at(-1)?.destroy())) === 200,
      10_000,
      'a place again',
    )
  })

  it('answers only to its own Host names (DNS rebinding), and names given with --http-host', async () => {
    const port = Number(new URL(base).port)
    const withHost = (host: string) =>
      new Promise<{ status: number; body: string }>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port, path: '/api/status', headers: { host } }, (res) => {
          let body = ''
          res.on('data', (d) => {
            body += d
          })
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body }))
        })
        req.on('error', reject)
        req.end()
      })
    for (const ok of [`localhost:${port}`, `127.0.0.1:${port}`, `[::1]:${port}`, 'LOCALHOST'])
      expect((await withHost(ok)).status, ok).toBe(200)
    const evil = await withHost(`evil.example:${port}`)
    expect(evil.status).toBe(403)
    expect(JSON.parse(evil.body)).toMatchObject({ error: 'FORBIDDEN_HOST' })
    expect(JSON.parse(evil.body).message).toContain('--http-host evil.example')
    // A name given at start is answered.
    const named = await ApiServer.start(a, { host: '127.0.0.1', port: 0, allowedHosts: ['pos.lan'] })
    try {
      const res = await fetch(`${named.url}/api/status`, { headers: { host: 'pos.lan' } })
      expect(res.status).toBe(200)
    } finally {
      await named.close()
    }
  })

  it('GET /metrics: ours and libp2p metrics in Prometheus text format', async () => {
    // The head moves while the scrape is made (a block a slot): the scraped value lies between.
    const before = a.head().height
    const res = await fetch(`${base}/metrics`)
    expect(res.headers.get('content-type')).toMatch(/text\/plain/)
    const text = await res.text()
    const after = a.head().height
    const value = (name: string) =>
      Number(/^(\S+) (\S+)$/m.exec(text.split('\n').find((l) => l.startsWith(`${name} `)) ?? '')?.[2])
    expect(value('pos_peer_head_height')).toBeGreaterThanOrEqual(before)
    expect(value('pos_peer_head_height')).toBeLessThanOrEqual(after)
    expect(value('pos_peer_finalized_height')).toBeGreaterThan(0)
    expect(value('pos_peer_connected_peers')).toBeGreaterThanOrEqual(1)
    expect(value('pos_peer_blocks_won_total')).toBeGreaterThan(0)
    expect(text).toMatch(/^pos_peer_gossip_messages_total\{topic="candidates",result="accepted",reason=""\} \d+/m)
    expect(text).toMatch(/^pos_peer_candidate_delay_seconds_bucket/m)
    expect(text).toMatch(/^libp2p_\w+/m)
  })

  it('GET / serves the dashboard with no link off this peer (works offline)', async () => {
    const html = await (await fetch(`${base}/`)).text()
    expect(html).toContain('<title>pos-peer</title>')
    for (const asset of ['/assets/app.js', '/assets/style.css']) {
      const res = await fetch(`${base}${asset}`)
      expect(res.status).toBe(200)
      const body = await res.text()
      expect(body).not.toMatch(
        /(src|href)\s*=\s*["']https?:|url\(\s*["']?https?:|import\s.*https?:|fetch\(\s*["']https?:/,
      )
    }
    expect(html).not.toMatch(/(src|href)\s*=\s*["']https?:/)
    expect((await fetch(`${base}/assets/../package.json`)).status).toBeGreaterThanOrEqual(400)
    // The first paint has the peer's state: status and the recent blocks are in the page itself.
    const embedded = /<script id="initial" type="application\/json">(.*?)<\/script>/s.exec(html)?.[1] ?? ''
    const initial = JSON.parse(embedded) as { status: { peerId: string }; blocks: { height: number }[] }
    expect(initial.status.peerId).toBe(a.peerId)
    expect(initial.blocks.length).toBeGreaterThan(0)
    expect(initial.blocks[0].height).toBeGreaterThanOrEqual(initial.blocks.at(-1)?.height ?? 0)
    // A favicon, not a 404.
    const icon = await fetch(`${base}/favicon.ico`)
    expect(icon.status).toBe(200)
    expect(icon.headers.get('content-type')).toMatch(/image\/svg\+xml/)
  })
})
