import { spawn } from 'node:child_process'
import { statSync } from 'node:fs'
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ClassicLevel } from 'classic-level'
import { afterEach, describe, expect, it } from 'vitest'
import { Chain } from '../../src/core/chain.js'
import { decodeCanonical, encodeCanonical } from '../../src/core/encoding.js'
import { makeChainConfig } from '../../src/core/params.js'
import { createReading } from '../../src/core/records.js'
import { StoreError } from '../../src/storage/errors.js'
import { loadOrCreateIdentity } from '../../src/storage/identity.js'
import { Store } from '../../src/storage/store.js'
import { LockstepChain } from '../helpers/chain-builder.js'
import { testNetwork, testSigners, timeOf } from '../helpers/fixtures.js'
import { tempDirs } from '../helpers/tempdirs.js'

const net = testNetwork()
const temp = tempDirs('store')
const tempDir = temp.make
afterEach(async () => {
  await temp.removeAll()
})

/** `steps` lockstep slots, each with a reading by the validators in turn, every import saved; the reading ids. */
async function writeSteps(store: Store, lock: LockstepChain, steps: number): Promise<string[]> {
  const ids: string[] = []
  for (let i = 0; i < steps; i++) {
    ids.push(lock.addReading(i % 3, 70))
    for (const r of lock.step()) await store.saveImport(r)
  }
  return ids
}

/** Every final height 1..root has a block, every stored state matches a replay. */
async function checkConsistent(store: Store): Promise<{ height: number; readings: number }> {
  const loaded = await store.loadChain()
  const chain = new Chain(net, { root: loaded.root, finalReadings: loaded.finalReadings })
  for (const b of loaded.unfinal) {
    try {
      chain.import(b, Number.MAX_SAFE_INTEGER)
    } catch (err) {
      // a block whose parent was never written cannot exist: every write is one batch
      throw new Error(`unfinal block does not import: ${(err as Error).message}`)
    }
  }
  const blocks = await store.finalBlocksFrom(1, 1_000_000)
  expect(blocks.length).toBe(loaded.root.height)
  let readings = 0
  const replay = new Chain(net)
  for (const bytes of blocks) {
    const { decodeBlock } = await import('../../src/core/records.js')
    const b = decodeBlock(net, bytes)
    readings += b.readings.length
    // replaying the final chain into a fresh tree must work block after block
    replay.import(b, Number.MAX_SAFE_INTEGER)
  }
  expect(loaded.finalReadings.size).toBe(readings)
  return { height: loaded.root.height, readings }
}

describe('store', () => {
  it('reopens with the same chain: root, final index, readings, tree and outbox', async () => {
    const dir = await tempDir()
    const signers = await testSigners(3, 's')
    let store = new Store(net, { path: dir })
    await store.open()
    const lock = new LockstepChain(net, signers, [10, 30, 60])
    const ids = await writeSteps(store, lock, 20)
    const outbox = createReading(net, signers[0], 99, timeOf(net, 1))
    await store.addOutboxReading(outbox)
    await store.close()

    store = new Store(net, { path: dir })
    await store.open()
    const loaded = await store.loadChain()
    expect(loaded.root.hash).toEqual(lock.chain.root.hash)
    expect(loaded.root.state.stakes.size).toBe(3)
    for (const id of ids.slice(0, 15)) expect(loaded.finalReadings.has(id)).toBe(true)
    expect(loaded.outboxReadings.map((r) => r.idHex)).toEqual([outbox.idHex])
    const again = new Chain(net, { root: loaded.root, finalReadings: loaded.finalReadings })
    for (const b of loaded.unfinal) again.import(b, Number.MAX_SAFE_INTEGER)
    expect(again.head.hashHex).toBe(lock.chain.head.hashHex)
    await checkConsistent(store)
    await store.close()
  })

  it('reopens with the final readings a block above the root could still need: older ones stay on disk only', async () => {
    // Readings may be 8 slots old when their block is made.
    const short = testNetwork({ maxReadingAgeMs: 8_000 })
    const dir = await tempDir()
    const signers = await testSigners(3, 'w')
    let store = new Store(short, { path: dir })
    await store.open()
    const lock = new LockstepChain(short, signers, [10, 30, 60])
    const ids = await writeSteps(store, lock, 30)
    // The chain itself has forgotten the oldest (its root moved on)...
    expect(lock.chain.finalReadings.has(ids[0])).toBe(false)
    expect(lock.chain.finalReadings.has(ids[24])).toBe(true)
    await store.close()
    // ... and an entry written before the index carried times (the block hash alone) is kept.
    const raw = new ClassicLevel<string, string>(dir)
    await raw.put(`r/${'ab'.repeat(32)}`, 'cd'.repeat(32))
    await raw.close()
    store = new Store(short, { path: dir })
    await store.open()
    const loaded = await store.loadChain()
    expect(loaded.finalReadings.has(ids[0])).toBe(false)
    expect(loaded.finalReadings.has(ids[24])).toBe(true)
    expect(loaded.finalReadings.has('ab'.repeat(32))).toBe(true)
    for (const id of ids) expect(loaded.finalReadings.has(id)).toBe(lock.chain.finalReadings.has(id))
    await store.close()
  })

  it('a writer killed with SIGKILL mid-loop leaves a store that reopens consistently', async () => {
    const dir = await tempDir()
    for (let round = 0; round < 2; round++) {
      const child = spawn(join('node_modules', '.bin', 'vite-node'), ['test/helpers/store-writer.ts', dir, '100000'], {
        stdio: ['ignore', 'pipe', 'inherit'],
      })
      let lines = 0
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('writer made no progress')), 60_000)
        child.stdout.on('data', (d: Buffer) => {
          lines += d.toString().split('\n').length - 1
          if (lines >= 40 + round * 17) {
            clearTimeout(timer)
            child.kill('SIGKILL')
            resolve()
          }
        })
        child.on('exit', () => {
          clearTimeout(timer)
          resolve()
        })
      })
      await new Promise((r) => child.once('exit', r).once('close', r))
      const store = new Store(net, { path: dir })
      await store.open()
      const { height } = await checkConsistent(store)
      expect(height).toBeGreaterThan(10)
      await store.close()
    }
  })

  it('a data dir in use by another store gives one clear LOCKED error naming the path', async () => {
    const dir = await tempDir()
    const a = new Store(net, { path: dir })
    await a.open()
    const b = new Store(net, { path: dir })
    await expect(b.open()).rejects.toThrow(StoreError)
    await expect(b.open()).rejects.toMatchObject({ code: 'LOCKED', message: expect.stringContaining(dir) })
    await a.close()
  })

  it('a garbage data dir gives a clear error naming the path, and is left untouched', async () => {
    const dir = await tempDir()
    await writeFile(join(dir, 'CURRENT'), 'garbage\n')
    await writeFile(join(dir, 'MANIFEST-000001'), 'not a manifest')
    const s = new Store(net, { path: dir })
    const err = await s.open().then(
      () => undefined,
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).message).toContain(dir)
    expect((err as StoreError).message.split('\n')).toHaveLength(1)
  })

  it('a data dir of another network is refused, not mixed', async () => {
    const dir = await tempDir()
    const a = new Store(net, { path: dir })
    await a.open()
    await a.close()
    const b = new Store(makeChainConfig({ name: 'othernet' }), { path: dir })
    await expect(b.open()).rejects.toMatchObject({ code: 'WRONG_NETWORK' })
  })

  it('keeps the identity in a 0600 key file and reads it back', async () => {
    const dir = await tempDir()
    const k1 = await loadOrCreateIdentity(join(dir, 'p'))
    const k2 = await loadOrCreateIdentity(join(dir, 'p'))
    expect(k2.equals(k1)).toBe(true)
    expect(statSync(join(dir, 'p', 'peer.key')).mode & 0o777).toBe(0o600)
    await mkdir(join(dir, 'bad'))
    await writeFile(join(dir, 'bad', 'peer.key'), 'junk')
    await expect(loadOrCreateIdentity(join(dir, 'bad'))).rejects.toMatchObject({ code: 'CORRUPT' })
  })
})

describe('store consistency check at open', () => {
  /** A data dir with a 20-block final chain, closed; returns its path. */
  async function storedChain(): Promise<string> {
    const dir = await tempDir()
    const store = new Store(net, { path: dir })
    await store.open()
    const lock = new LockstepChain(net, await testSigners(3, 'chk'), [10, 30, 60])
    while (lock.chain.root.height < 20) {
      lock.addReading(lock.slot % 3, 70)
      for (const r of lock.step()) await store.saveImport(r)
    }
    await store.close()
    return dir
  }

  async function loadError(dir: string): Promise<StoreError> {
    const store = new Store(net, { path: dir })
    await store.open()
    try {
      await store.loadChain()
    } catch (err) {
      return err as StoreError
    } finally {
      await store.close()
    }
    throw new Error('the damaged store loaded')
  }

  it('a finalized height that the final blocks do not reach is reported, not carried on from', async () => {
    const dir = await storedChain()
    const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    const [hash, , slot, epoch] = decodeCanonical((await db.get('m/finalized')) as Uint8Array, 1024) as [
      Uint8Array,
      number,
      number,
      number,
    ]
    await db.put('m/finalized', encodeCanonical([hash, 999_999, slot, epoch]))
    await db.close()
    const err = await loadError(dir)
    expect(err).toBeInstanceOf(StoreError)
    expect(err.code).toBe('CORRUPT')
    expect(err.message).toMatch(/finalized height is 999999 but the final blocks end at \d+/)
  })

  it('a deleted final block is reported with its height', async () => {
    const dir = await storedChain()
    const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    const hash = new TextDecoder().decode((await db.get('h/0000000000000007')) as Uint8Array)
    await db.del(`b/${hash}`)
    await db.close()
    const err = await loadError(dir)
    expect(err.code).toBe('CORRUPT')
    expect(err.message).toContain('the final block at height 7')
    expect(err.message.split('\n')).toHaveLength(1)
  })

  it('an intact store passes the check', async () => {
    const dir = await storedChain()
    const store = new Store(net, { path: dir })
    await store.open()
    expect((await store.loadChain()).root.height).toBeGreaterThanOrEqual(20)
    await store.close()
  })
})

describe('slashing protection file', () => {
  const open = async (dir: string) => {
    const store = new Store(net, { path: dir })
    await store.open()
    return store
  }

  it('a torn record (a crash mid-write) leaves the other one; a file with no valid record is a corrupt data dir', async () => {
    const dir = await tempDir()
    const store = await open(dir)
    expect(store.mayPropose(10, 3)).toBe(true) // record 0
    expect(store.mayPropose(11, 4)).toBe(true) // record 1
    await store.close()
    const file = join(dir, 'slashing-protection')
    const bytes = await readFile(file)
    expect(bytes.byteLength).toBe(64)
    // The write of slot 11 torn: only slot 10 (its block may have been signed) still refuses.
    bytes[32 + 6] ^= 0xff
    await writeFile(file, bytes)
    const again = await open(dir)
    expect(again.mayPropose(10, 3)).toBe(false)
    expect(again.mayPropose(11, 3)).toBe(true)
    await again.close()
    // Both records spoiled: refused at open, naming the data dir, and the file is left as it was.
    const spoiled = (await readFile(file)).map((x) => x ^ 0x55)
    await writeFile(file, spoiled)
    const err = await open(dir).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(StoreError)
    expect((err as StoreError).code).toBe('CORRUPT')
    expect((err as Error).message).toContain(dir)
    expect(await readFile(file)).toEqual(Buffer.from(spoiled))
    // The very first write torn (nothing signed yet): as a new file.
    await writeFile(file, spoiled.subarray(0, 20))
    const fresh = await open(dir)
    expect(fresh.mayPropose(1, 0)).toBe(true)
    await fresh.close()
  })

  it('a data dir from before the file: what LevelDB held still refuses', async () => {
    const dir = await tempDir()
    await (await open(dir)).close()
    const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' })
    await db.put('m/protection', encodeCanonical([500, 40]))
    await db.close()
    const store = await open(dir)
    expect(store.mayPropose(500, 40)).toBe(false)
    expect(store.mayPropose(501, 39)).toBe(false)
    expect(store.mayPropose(501, 40)).toBe(true)
    await store.close()
  })
})
