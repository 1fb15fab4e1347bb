import { existsSync } from 'node:fs'
import { readFile } from 'node:fs/promises'
import type { ServerResponse } from 'node:http'
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify'
import { AddressError, addressOf } from '../core/crypto.js'
import { PosError } from '../core/errors.js'
import { BusyError, TransferError } from '../node/chain-service.js'
import type { Peer, PeerEvents } from '../node/peer.js'
import { type BlockView, blockViewOn, readingJson, ref, transferJson } from '../node/views.js'
import type { PeerMetrics } from './metrics.js'

/** Most blocks one /api/blocks request returns. */
export const MAX_BLOCKS = 100
/** Most concurrent /api/events streams; more get 503. */
export const MAX_EVENT_STREAMS = 32
/** Most concurrent /api/events streams from one client address; more get 429. */
export const MAX_EVENT_STREAMS_PER_CLIENT = 4
const MAX_STREAM_BACKLOG = 1 << 20
/** Blocks embedded in the dashboard page (what its live list shows). */
const INITIAL_BLOCKS = 50
const FAVICON =
  '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 16 16"><path fill="#d33" d="M8 14.5 1.6 8.3A3.9 3.9 0 0 1 8 3.6a3.9 3.9 0 0 1 6.4 4.7z"/></svg>'

/** The dashboard files: beside this module when run from source, in src/ when run from dist/. */
const DASHBOARD = [
  new URL('./dashboard/', import.meta.url),
  new URL('../../../src/api/dashboard/', import.meta.url),
].find((u) => existsSync(new URL('index.html', u)))
const ASSETS: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
}

export interface ApiOptions {
  readonly host: string
  readonly port: number
  readonly metrics?: PeerMetrics
  /** Host header names accepted besides localhost, 127.0.0.1, ::1 and the bound address. */
  readonly allowedHosts?: readonly string[]
}

/** The host part of a Host header (without the port; IPv6 without brackets), lower case. */
export function hostOf(header: string): string {
  const h = header.trim().toLowerCase()
  if (h.startsWith('[')) return h.slice(1, h.indexOf(']'))
  const colon = h.lastIndexOf(':')
  return colon >= 0 && h.indexOf(':') === colon ? h.slice(0, colon) : h
}

export class HttpConfigError extends Error {
  override name = 'HttpConfigError'
}

const errorBody = (error: string, message: string) => ({ error, message })

/**
 * The peer's HTTP API, Prometheus endpoint and dashboard (fastify, schema-validated input). It
 * only reads the peer's state and subscribes to its events, like the terminal does.
 */
export class ApiServer {
  private readonly app: FastifyInstance
  private readonly streams = new Set<ServerResponse>()
  private readonly streamsByClient = new Map<string, number>()
  private readonly allowedHosts: Set<string>
  private readonly offs: (() => void)[] = []
  private keepAlive: NodeJS.Timeout | undefined

  private constructor(
    private readonly peer: Peer,
    private readonly metrics: PeerMetrics | undefined,
    opts: ApiOptions,
  ) {
    this.allowedHosts = new Set(
      ['localhost', '127.0.0.1', '::1', opts.host, ...(opts.allowedHosts ?? [])].map((h) => h.toLowerCase()),
    )
    // Unknown fields are an error (400), not silently dropped (fastify's default).
    this.app = Fastify({ logger: false, bodyLimit: 4096, ajv: { customOptions: { removeAdditional: false } } })
    this.checkHost()
    this.routes()
    this.forwardEvents()
  }

  static async start(peer: Peer, opts: ApiOptions): Promise<ApiServer> {
    const server = new ApiServer(peer, opts.metrics, opts)
    try {
      await server.app.listen({ host: opts.host, port: opts.port })
    } catch (err) {
      server.unsubscribe()
      const code = (err as NodeJS.ErrnoException).code
      if (code === 'EADDRINUSE')
        throw new HttpConfigError(`--http ${opts.host}:${opts.port}: the port is in use, pick another`)
      if (code === 'EADDRNOTAVAIL')
        throw new HttpConfigError(`--http ${opts.host}:${opts.port}: no such address on this machine`)
      throw err
    }
    return server
  }

  /** The base URL, e.g. http://127.0.0.1:8080 */
  get url(): string {
    const addr = this.app.server.address()
    if (addr === null || typeof addr === 'string') return String(addr)
    const host = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    return `http://${host}:${addr.port}`
  }

  async close(): Promise<void> {
    this.unsubscribe()
    for (const s of this.streams) s.end()
    this.streams.clear()
    await this.app.close()
  }

  private unsubscribe(): void {
    clearInterval(this.keepAlive)
    for (const off of this.offs.splice(0)) off()
  }

  /**
   * DNS rebinding: a web page on evil.example resolving its name to 127.0.0.1 could read this API
   * and post readings from the user's browser. Its requests carry its own name in Host, so only
   * the names this server is known by are answered.
   */
  private checkHost(): void {
    this.app.addHook('onRequest', async (req, reply) => {
      const header = req.headers.host
      if (header === undefined || this.allowedHosts.has(hostOf(header))) return
      return reply
        .code(403)
        .send(
          errorBody(
            'FORBIDDEN_HOST',
            `this API answers to ${[...this.allowedHosts].join(', ')}; start with --http-host ${hostOf(header)} to allow that name`,
          ),
        )
    })
  }

  private routes(): void {
    const { app, peer } = this

    app.setErrorHandler((err: FastifyError, _req, reply) => {
      if (err.validation !== undefined) return reply.code(400).send(errorBody('BAD_REQUEST', err.message))
      const status = err.statusCode ?? 500
      if (status < 500)
        return reply.code(status).send(errorBody(status === 413 ? 'TOO_LARGE' : 'BAD_REQUEST', err.message))
      return reply.code(500).send(errorBody('INTERNAL', 'internal error'))
    })
    app.setNotFoundHandler((req, reply) =>
      reply.code(404).send(errorBody('NOT_FOUND', `no route ${req.method} ${req.url.split('?')[0]}`)),
    )

    app.get('/api/status', async () => this.statusJson())

    app.get(
      '/api/blocks',
      {
        schema: {
          querystring: {
            type: 'object',
            additionalProperties: false,
            properties: {
              from: { type: 'integer', minimum: 1 },
              limit: { type: 'integer', minimum: 1, maximum: MAX_BLOCKS, default: 20 },
            },
          },
        },
      },
      async (req) => {
        const { from, limit } = req.query as { from?: number; limit: number }
        // Without `from`: the newest blocks, newest first. With it: ascending from that height.
        return { blocks: from === undefined ? await peer.recentBlocks(limit) : await peer.canonicalBlocks(from, limit) }
      },
    )

    app.get(
      '/api/blocks/:id',
      {
        schema: {
          params: {
            type: 'object',
            properties: { id: { type: 'string', pattern: '^([0-9]{1,15}|[0-9a-fA-F]{64})$' } },
            required: ['id'],
          },
        },
      },
      async (req, reply) => {
        const { id } = req.params as { id: string }
        let block: BlockView | undefined
        if (id.length === 64) {
          block = await peer.blockByHash(id)
        } else {
          const height = Number(id)
          const onChain = height >= 1 && height <= peer.head().height
          ;[block] = onChain ? await peer.canonicalBlocks(height, 1) : []
        }
        if (block === undefined) return reply.code(404).send(errorBody('NOT_FOUND', `no block ${id}`))
        return block
      },
    )

    app.get('/api/validators', async () => ({ validators: peer.validators() }))

    app.get('/api/peers', async () => ({ peers: peer.connections() }))

    app.get('/api/accounts', async () => ({ ledger: peer.config.ledger, accounts: peer.accounts() }))

    app.post(
      '/api/transfers',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['to', 'amount'],
            properties: { to: { type: 'string', maxLength: 100 }, amount: { type: 'integer' } },
          },
        },
        preValidation: async (req, reply) => {
          const amount = (req.body as { amount?: unknown } | null)?.amount
          if (amount !== undefined && typeof amount !== 'number')
            return reply.code(400).send(errorBody('BAD_REQUEST', 'body/amount must be integer (a JSON number)'))
        },
      },
      async (req, reply) => {
        const { to, amount } = req.body as { to: string; amount: number }
        try {
          const t = await peer.submitTransfer(to, amount)
          return reply.code(202).send(transferJson(t))
        } catch (err) {
          if (err instanceof AddressError) return reply.code(400).send(errorBody('BAD_ADDRESS', err.message))
          if (err instanceof TransferError)
            return reply.code(err.code === 'TOO_MANY_PENDING' ? 503 : 400).send(errorBody(err.code, err.message))
          throw err
        }
      },
    )

    app.post(
      '/api/readings',
      {
        schema: {
          body: {
            type: 'object',
            additionalProperties: false,
            required: ['bpm'],
            properties: { bpm: { type: 'integer' } },
          },
        },
        // The schema validator coerces "72" to 72 (fastify's default, needed for query strings);
        // a JSON body says what it means, so a string BPM is a 400 before that.
        preValidation: async (req, reply) => {
          const bpm = (req.body as { bpm?: unknown } | null)?.bpm
          if (bpm !== undefined && typeof bpm !== 'number')
            return reply.code(400).send(errorBody('BAD_REQUEST', 'body/bpm must be integer (a JSON number)'))
        },
      },
      async (req, reply) => {
        const { bpm } = req.body as { bpm: number }
        try {
          const r = await peer.submitReading(bpm)
          return reply.code(202).send(readingJson(r))
        } catch (err) {
          if (err instanceof PosError) return reply.code(400).send(errorBody(err.code, err.message))
          // Never a 202 for a reading that will not be proposed: busy is said, with when to retry.
          if (err instanceof BusyError)
            return reply
              .code(503)
              .header('retry-after', String(Math.max(1, Math.ceil(peer.config.params.slotMs / 1000))))
              .send(errorBody(err.code, err.message))
          throw err
        }
      },
    )

    app.get('/api/events', (req, reply) => {
      const client = req.ip
      const mine = this.streamsByClient.get(client) ?? 0
      if (mine >= MAX_EVENT_STREAMS_PER_CLIENT)
        return reply
          .code(429)
          .send(errorBody('TOO_MANY_STREAMS', `at most ${MAX_EVENT_STREAMS_PER_CLIENT} event streams per client`))
      if (this.streams.size >= MAX_EVENT_STREAMS)
        return reply.code(503).send(errorBody('BUSY', `at most ${MAX_EVENT_STREAMS} event streams`))
      reply.hijack()
      const res = reply.raw
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        connection: 'keep-alive',
      })
      res.write(': pos-peer events\n\n')
      this.streams.add(res)
      this.streamsByClient.set(client, mine + 1)
      req.raw.on('close', () => {
        this.streams.delete(res)
        const n = (this.streamsByClient.get(client) ?? 1) - 1
        if (n <= 0) this.streamsByClient.delete(client)
        else this.streamsByClient.set(client, n)
      })
    })

    app.get('/metrics', async (_req, reply) => {
      if (this.metrics === undefined) return reply.code(404).send(errorBody('NOT_FOUND', 'metrics are off'))
      return reply.type(this.metrics.contentType).send(await this.metrics.text())
    })

    // The page arrives with the peer's state in it: the first paint shows the chain, not "offline".
    app.get('/', async (_req, reply) => {
      const initial = { status: this.statusJson(), blocks: await peer.recentBlocks(INITIAL_BLOCKS) }
      // JSON inside <script>: no "</script>" or "<!--" can close it early.
      const json = JSON.stringify(initial).replace(/</g, '\\u003c')
      return this.asset(reply, 'index.html', (html) => html.replace('{"initial":null}', json))
    })
    // Browsers ask for it on every page: a small SVG heart instead of a 404.
    app.get('/favicon.ico', (_req, reply) =>
      reply.type('image/svg+xml').header('cache-control', 'max-age=86400').send(FAVICON),
    )
    app.get(
      '/assets/:file',
      {
        schema: {
          params: { type: 'object', properties: { file: { type: 'string', enum: Object.keys(ASSETS) } } },
        },
      },
      (req, reply) => this.asset(reply, (req.params as { file: string }).file),
    )
  }

  private async asset(reply: import('fastify').FastifyReply, file: string, transform?: (text: string) => string) {
    if (DASHBOARD === undefined) return reply.code(404).send(errorBody('NOT_FOUND', 'dashboard files are missing'))
    const body = await readFile(new URL(file, DASHBOARD))
    return reply
      .type(ASSETS[file])
      .header('cache-control', 'no-cache')
      .send(transform === undefined ? body : transform(body.toString('utf8')))
  }

  private statusJson() {
    const { peer } = this
    const { params, idHex } = peer.config
    return {
      peerId: peer.peerId,
      network: {
        name: params.name,
        id: idHex,
        slotMs: params.slotMs,
        minBpm: params.minBpm,
        maxBpm: params.maxBpm,
      },
      slot: peer.currentSlot(),
      head: ref(peer.head()),
      finalized: ref(peer.finalized()),
      peers: peer.connectedPeers().length,
      stake: peer.stake,
      addrs: peer.listenAddrs(),
    }
  }

  /** One subscription to the peer; every event stream gets a copy. */
  private forwardEvents(): void {
    const { peer } = this
    const send = (event: string, data: unknown) => {
      if (this.streams.size === 0) return
      const frame = `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`
      for (const s of this.streams) {
        // A client that does not read (1 MiB behind, e.g. during a long sync) is dropped, not buffered for.
        if (s.writableLength > MAX_STREAM_BACKLOG) {
          this.streams.delete(s)
          s.destroy()
        } else s.write(frame)
      }
    }
    const on = <K extends keyof PeerEvents & string>(name: K, fn: (p: PeerEvents[K]) => void) =>
      this.offs.push(peer.events.on(name, fn))
    on('block', ({ node }) => send('block', blockViewOn(peer, node)))
    on('finalized', ({ node }) => send('finalized', ref(node)))
    on('head', ({ node }) => send('head', ref(node)))
    on('reorg', ({ from, to, depth }) => send('reorg', { from: ref(from), to: ref(to), depth }))
    on('peer:connect', ({ peerId }) => send('peer:connect', { peerId }))
    on('peer:disconnect', ({ peerId }) => send('peer:disconnect', { peerId }))
    on('submitted', ({ reading }) => send('reading', readingJson(reading)))
    on('slashed', ({ offender, node }) =>
      send('slashed', { validator: addressOf(Buffer.from(offender, 'hex')), block: ref(node) }),
    )
    // Comments keep idle streams open through proxies.
    this.keepAlive = setInterval(() => {
      for (const s of this.streams) s.write(': keep-alive\n\n')
    }, 15_000)
    this.keepAlive.unref()
  }
}
