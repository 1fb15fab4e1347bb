import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { Worker } from 'node:worker_threads'
import { rememberVerified } from '../core/crypto.js'
import type { SignatureCheck } from '../core/records.js'

/**
 * The code each worker thread runs: verify a list of [publicKey, message, signature] with the
 * check the main thread runs (core/crypto `ed25519Verify`: libsodium, by its resolved path, since
 * an eval'd worker resolves modules from the working directory).
 */
const WORKER_CODE = `
const { parentPort } = require('node:worker_threads')
const sodium = require(${JSON.stringify(createRequire(import.meta.url).resolve('sodium-native'))})
parentPort.on('message', ({ id, checks }) => {
  const ok = checks.map(([pk, msg, sig]) =>
    pk.byteLength === 32 && sig.byteLength === 64 &&
    sodium.crypto_sign_verify_detached(Buffer.from(sig), Buffer.from(msg), Buffer.from(pk)))
  parentPort.postMessage({ id, ok })
})
`

type PartRunner = (part: readonly SignatureCheck[]) => Promise<boolean[]>

export interface VerifyPoolOptions {
  /** Worker threads (default: up to 4, one per core). */
  readonly size?: number
  /**
   * Test seam: how thread `index` checks its part; `onThread` is the real way. A test can answer
   * short, as a thread stopped by close() does.
   */
  readonly runPart?: (part: readonly SignatureCheck[], index: number, onThread: PartRunner) => Promise<boolean[]>
}

/**
 * Ed25519 checks on worker threads, for range sync: a batch of blocks is verified in parallel
 * before it is imported one by one, and every valid signature is remembered (crypto's cache) so
 * the import finds it. An invalid one is simply not remembered: the import checks it again and
 * rejects the block as usual, so the pool can only make sync faster, never change its outcome.
 */
export class VerifyPool {
  private workers: Worker[] = []
  private readonly waiting = new Map<number, (ok: boolean[]) => void>()
  private nextId = 0
  private broken = false
  private readonly size: number

  constructor(private readonly opts: VerifyPoolOptions = {}) {
    this.size = opts.size ?? Math.max(1, Math.min(4, availableParallelism()))
  }

  /** Verify `checks` across the workers and remember the valid ones. Never throws. */
  async verifyAndRemember(checks: readonly SignatureCheck[]): Promise<void> {
    if (checks.length === 0 || this.broken) return
    try {
      this.start()
      const per = Math.ceil(checks.length / this.workers.length)
      const parts = this.workers.map((_, i) => checks.slice(i * per, (i + 1) * per))
      const results = await Promise.all(
        this.workers.map((w, i) => {
          const onThread: PartRunner = (part) => this.run(w, part)
          return this.opts.runPart === undefined ? onThread(parts[i]) : this.opts.runPart(parts[i], i, onThread)
        }),
      )
      // Each part's answers belong to that part's checks only (an answer cut short by close()
      // must not shift the others).
      parts.forEach((part, i) => {
        part.forEach((c, j) => {
          if (results[i][j] === true) rememberVerified(c.publicKey, c.message, c.signature)
        })
      })
    } catch {
      // Workers unavailable: the import verifies on the main thread as before.
      this.broken = true
      await this.close()
    }
  }

  private start(): void {
    if (this.workers.length > 0) return
    for (let i = 0; i < this.size; i++) {
      const w = new Worker(WORKER_CODE, { eval: true })
      w.unref()
      w.on('message', ({ id, ok }: { id: number; ok: boolean[] }) => {
        this.waiting.get(id)?.(ok)
        this.waiting.delete(id)
      })
      this.workers.push(w)
    }
  }

  private run(w: Worker, checks: readonly SignatureCheck[]): Promise<boolean[]> {
    if (checks.length === 0) return Promise.resolve([])
    const id = this.nextId++
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err)
      w.once('error', onError)
      this.waiting.set(id, (ok) => {
        w.off('error', onError)
        resolve(ok)
      })
      w.postMessage({ id, checks: checks.map((c) => [c.publicKey, c.message, c.signature]) })
    })
  }

  /** Stop the threads (started again on the next use); checks still pending count as not done. */
  async close(): Promise<void> {
    const ws = this.workers
    this.workers = []
    for (const resolve of this.waiting.values()) resolve([])
    this.waiting.clear()
    await Promise.all(ws.map((w) => w.terminate().catch(() => 0)))
  }
}
