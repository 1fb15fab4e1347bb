import { join } from 'node:path'
import type { AbstractLevel } from 'abstract-level'
import { ClassicLevel } from 'classic-level'
import { MemoryLevel } from 'memory-level'
import { toHex } from '../core/bytes.js'
import { type ChainRoot, genesisRoot, type ImportResult } from '../core/chain.js'
import { decodeCanonical, encodeCanonical, expectArray, expectUint } from '../core/encoding.js'
import { FinalReadings } from '../core/final-readings.js'
import type { ChainConfig } from '../core/params.js'
import {
  type Block,
  decodeBlock,
  decodeReading,
  decodeStake,
  decodeTransfer,
  encodeReading,
  encodeStake,
  encodeTransfer,
  type Reading,
  type StakeAnnouncement,
  type Transfer,
} from '../core/records.js'
import { decodeState, encodeState } from '../core/state.js'
import { blockReadingWindow } from '../core/validation.js'
import { StoreError } from './errors.js'
import { type Signed, SlashingProtection } from './protection.js'

/** The slashing protection file, in the store's directory (LevelDB leaves names it does not use alone). */
const PROTECTION_FILE = 'slashing-protection'

type Level = AbstractLevel<string | Buffer | Uint8Array, string, Uint8Array>

/**
 * Key layout (docs/PROTOCOL.md, "Storage"). Every change is one atomic batch.
 *   b/<hash>      block bytes (final and not-yet-final blocks)
 *   u/<hash>      marker: block is in the tree of not-yet-final blocks
 *   h/<height>    hash of the final block at that height (zero-padded, so keys sort by height)
 *   r/<id>        "<hash> <time>": the final block holding that reading, and the reading's time
 *                 (older entries hold the hash alone)
 *   o/r/<id>      outbox: a reading typed on this peer, until final
 *   o/s           outbox: this peer's latest stake announcement
 *   o/t/<id>      outbox: a transfer sent from this peer, until final (or replaced by the chain)
 *   m/network     network id; m/finalized [hash, height, slot, epoch]; m/state the finalized state
 *   m/protection  slashing protection as versions before the file below kept it: [last slot
 *                 signed, highest source epoch signed]; read once at open, no longer written
 * and beside the keys, the file `slashing-protection` (./protection.ts).
 */
const K = {
  block: (h: string) => `b/${h}`,
  unfinal: (h: string) => `u/${h}`,
  height: (n: number) => `h/${n.toString().padStart(16, '0')}`,
  reading: (id: string) => `r/${id}`,
  outReading: (id: string) => `o/r/${id}`,
  outStake: 'o/s',
  outTransfer: (id: string) => `o/t/${id}`,
  network: 'm/network',
  protection: 'm/protection',
  finalized: 'm/finalized',
  state: 'm/state',
}

export interface LoadedChain {
  readonly root: ChainRoot
  readonly finalReadings: FinalReadings
  /** Not-yet-final blocks, lowest height first, to re-import into the tree. */
  readonly unfinal: Block[]
  readonly outboxReadings: Reading[]
  readonly outboxStake: StakeAnnouncement | undefined
  readonly outboxTransfers: Transfer[]
}

export interface StoreOptions {
  /** Directory of the LevelDB; undefined keeps everything in memory. */
  readonly path?: string
}

const utf8 = new TextEncoder()
const text = new TextDecoder()

export class Store {
  readonly path: string
  private readonly db: Level
  private readonly onDisk: boolean
  private protection: SlashingProtection | undefined

  constructor(
    private readonly net: ChainConfig,
    opts: StoreOptions = {},
  ) {
    this.path = opts.path ?? ':memory:'
    this.onDisk = opts.path !== undefined
    this.db = (opts.path === undefined
      ? new MemoryLevel({ keyEncoding: 'utf8', valueEncoding: 'view' })
      : new ClassicLevel(opts.path, { keyEncoding: 'utf8', valueEncoding: 'view' })) as unknown as Level
  }

  async open(): Promise<void> {
    try {
      await this.db.open()
    } catch (err) {
      throw this.openError(err)
    }
    const id = await this.db.get(K.network)
    if (id === undefined) {
      await this.db.put(K.network, this.net.id)
    } else if (toHex(id) !== this.net.idHex) {
      await this.db.close()
      throw new StoreError(
        'WRONG_NETWORK',
        this.path,
        `data dir ${this.path} holds network ${toHex(id).slice(0, 16)}, not ${this.net.idHex.slice(0, 16)} (another network, another genesis file, or a chain of an older pos-peer version whose format changed): use another --data-dir (or --name) for this network, or move this one away`,
      )
    }
    // Opened once LevelDB holds its lock: no two processes write the file.
    try {
      const raw = await this.db.get(K.protection)
      let earlier: Signed | undefined
      if (raw !== undefined) {
        const [last, source] = expectArray(decodeCanonical(raw, 64), 'protection', 2)
        earlier = { slot: expectUint(last, 'slot'), source: expectUint(source, 'source') }
      }
      this.protection = SlashingProtection.open(this.onDisk ? join(this.path, PROTECTION_FILE) : undefined, earlier)
    } catch (err) {
      await this.db.close()
      const code = (err as NodeJS.ErrnoException).code
      if (code === undefined) throw this.corrupt('slashing protection', err)
      throw new StoreError('IO', this.path, `cannot open ${join(this.path, PROTECTION_FILE)}: ${code}`)
    }
  }

  private openError(err: unknown): StoreError {
    const e = err as { code?: string; cause?: { code?: string; message?: string }; message?: string }
    const code = e.cause?.code ?? e.code
    if (code === 'LEVEL_LOCKED') {
      return new StoreError(
        'LOCKED',
        this.path,
        `data dir ${this.path} is in use by another pos-peer: stop it, or pick another --data-dir / --name`,
      )
    }
    if (code === 'LEVEL_CORRUPTION' || code === 'LEVEL_INVALID_VALUE') {
      return new StoreError(
        'CORRUPT',
        this.path,
        `data dir ${this.path} is corrupt: move it away (nothing was changed) and start again`,
      )
    }
    const reason = e.cause?.message ?? e.message ?? String(err)
    return new StoreError('IO', this.path, `cannot open data dir ${this.path}: ${reason.split('\n')[0]}`)
  }

  async close(): Promise<void> {
    this.protection?.close()
    this.protection = undefined
    if (this.db.status === 'open' || this.db.status === 'opening') await this.db.close()
  }

  private corrupt(what: string, err?: unknown): StoreError {
    const reason = err instanceof Error ? `: ${err.message.slice(0, 120)}` : ''
    return new StoreError(
      'CORRUPT',
      this.path,
      `data dir ${this.path} is corrupt (${what}${reason}): move it away and start again`,
    )
  }

  async loadChain(): Promise<LoadedChain> {
    let root: ChainRoot = genesisRoot(this.net)
    const fin = await this.db.get(K.finalized)
    if (fin !== undefined) {
      try {
        const [hash, height, slot, epoch] = expectArray(decodeCanonical(fin, 1024), 'finalized', 4)
        const hashHex = text.decode(hash as Uint8Array)
        const bytes = await this.db.get(K.block(hashHex))
        const stateBytes = await this.db.get(K.state)
        if (bytes === undefined || stateBytes === undefined) throw new Error('finalized block or state missing')
        const block = decodeBlock(this.net, bytes)
        if (block.hashHex !== hashHex) throw new Error('finalized block hash mismatch')
        root = {
          block,
          hash: block.hash,
          height: expectUint(height, 'height'),
          slot: expectUint(slot, 'slot'),
          state: decodeState(stateBytes),
          epoch: expectUint(epoch, 'epoch'),
        }
      } catch (err) {
        throw this.corrupt('finalized block', err)
      }
    }
    await this.checkFinalIndex(root)
    // The ids a block above the root could still need (dated within its next slot's window); an
    // entry written before the index carried times (value: the block hash alone) is kept.
    const earliest = blockReadingWindow(this.net, root.slot + 1).earliest
    const entries: { id: string; time: number }[] = []
    for await (const [key, value] of this.db.iterator({ gt: 'r/', lt: 'r0' })) {
      const time = Number(text.decode(value).split(' ')[1] ?? Number.MAX_SAFE_INTEGER)
      if (!(time < earliest)) entries.push({ id: key.slice(2), time })
    }
    const finalReadings = FinalReadings.from(entries)
    const unfinal: Block[] = []
    const stale: string[] = []
    try {
      for await (const key of this.db.keys({ gt: 'u/', lt: 'u0' })) {
        const bytes = await this.db.get(K.block(key.slice(2)))
        const block = bytes === undefined ? undefined : decodeBlock(this.net, bytes)
        // Left over when a process stopped before a losing branch was pruned: drop it now.
        if (block !== undefined && block.height > root.height) unfinal.push(block)
        else if (block === undefined || (await this.finalHashAt(block.height)) !== block.hashHex)
          stale.push(key.slice(2))
      }
      if (stale.length > 0) {
        await this.db.batch(
          stale.flatMap((h) => [
            { type: 'del' as const, key: K.unfinal(h) },
            { type: 'del' as const, key: K.block(h) },
          ]),
        )
      }
      unfinal.sort((a, b) => a.height - b.height || a.slot - b.slot)
      const outboxReadings: Reading[] = []
      for await (const value of this.db.values({ gt: 'o/r/', lt: 'o/r0' })) outboxReadings.push(decodeReading(value))
      const outboxTransfers: Transfer[] = []
      for await (const value of this.db.values({ gt: 'o/t/', lt: 'o/t0' })) outboxTransfers.push(decodeTransfer(value))
      const s = await this.db.get(K.outStake)
      return {
        root,
        finalReadings,
        unfinal,
        outboxReadings,
        outboxStake: s === undefined ? undefined : decodeStake(s),
        outboxTransfers,
      }
    } catch (err) {
      throw this.corrupt('stored records', err)
    }
  }

  /**
   * The consistency check at open: the height index runs from 1 to the finalized height without a
   * gap, ends at the finalized block, and every block it names is stored. (Every write is one
   * batch, so only a damaged or hand-edited data dir fails this.) Key reads only, in chunks.
   */
  private async checkFinalIndex(root: ChainRoot): Promise<void> {
    let expected = 1
    let chunk: { height: number; hash: string }[] = []
    const flush = async () => {
      const present = await this.db.getMany(chunk.map((c) => K.block(c.hash)))
      const gone = chunk.find((_, i) => present[i] === undefined)
      if (gone !== undefined)
        throw this.corrupt(`the final block at height ${gone.height} (${gone.hash.slice(0, 16)}) is missing`)
      chunk = []
    }
    for await (const [key, value] of this.db.iterator({ gt: 'h/', lt: 'h0' })) {
      const height = Number(key.slice(2))
      if (height !== expected) throw this.corrupt(`the height index skips from ${expected - 1} to ${height}`)
      chunk.push({ height, hash: text.decode(value) })
      if (chunk.length >= 1024) await flush()
      expected++
    }
    await flush()
    const last = expected - 1
    if (last !== root.height)
      throw this.corrupt(`the finalized height is ${root.height} but the final blocks end at ${last}`)
    if (root.height > 0 && (await this.finalHashAt(root.height)) !== toHex(root.hash))
      throw this.corrupt(`the final block at height ${root.height} is not the finalized block`)
  }

  /** Persist one import: the new block, what became final, what was dropped. One atomic batch. */
  async saveImport(result: ImportResult): Promise<void> {
    const batch = this.db.batch()
    const b = result.node.block as Block
    batch.put(K.block(b.hashHex), b.bytes)
    batch.put(K.unfinal(b.hashHex), new Uint8Array(0))
    for (const n of result.finalized) {
      const fb = n.block as Block
      batch.put(K.height(n.height), utf8.encode(n.hashHex))
      batch.del(K.unfinal(n.hashHex))
      for (const r of fb.readings) {
        batch.put(K.reading(r.idHex), utf8.encode(`${n.hashHex} ${r.time}`))
        batch.del(K.outReading(r.idHex))
      }
      for (const t of fb.transfers) batch.del(K.outTransfer(t.idHex))
    }
    // (Genesis finalized at a later epoch is not written: it reloads as (genesis, 0), which is safe.)
    if (result.finalityMoved && result.finalizedCheckpoint.node.block !== undefined) {
      const { node: last, epoch } = result.finalizedCheckpoint
      batch.put(K.finalized, encodeCanonical([utf8.encode(last.hashHex), last.height, last.slot, epoch]))
      batch.put(K.state, encodeState(last.state))
    }
    for (const h of result.pruned) {
      batch.del(K.block(h))
      batch.del(K.unfinal(h))
    }
    await batch.write()
  }

  /**
   * Slashing protection (docs/PROTOCOL.md section 5): may this key sign a block of `slot` whose
   * source epoch is `sourceEpoch`? Only for a slot after every slot it signed and a source no
   * lower than any it signed, which can never make a slashable pair with what it signed before.
   * A yes is on disk before it is returned (synchronously: nothing runs between the check and the
   * signature), so a crash right after signing cannot forget it.
   */
  mayPropose(slot: number, sourceEpoch: number): boolean {
    if (this.protection === undefined) throw new Error('mayPropose: the store is not open')
    return this.protection.permit(slot, sourceEpoch)
  }

  async addOutboxReading(r: Reading): Promise<void> {
    await this.db.put(K.outReading(r.idHex), encodeReading(r))
  }

  /** Readings that can never be final (too old): out of the outbox, in one batch. */
  async dropOutboxReadings(readings: readonly Reading[]): Promise<void> {
    const batch = this.db.batch()
    for (const r of readings) batch.del(K.outReading(r.idHex))
    await batch.write()
  }

  async addOutboxTransfer(t: Transfer): Promise<void> {
    await this.db.put(K.outTransfer(t.idHex), encodeTransfer(t))
  }

  /** Transfers of ours the chain made impossible (their nonce went to another): out of the outbox. */
  async dropOutboxTransfers(transfers: readonly Transfer[]): Promise<void> {
    const batch = this.db.batch()
    for (const t of transfers) batch.del(K.outTransfer(t.idHex))
    await batch.write()
  }

  async setOutboxStake(s: StakeAnnouncement): Promise<void> {
    await this.db.put(K.outStake, encodeStake(s))
  }

  async blockByHash(hashHex: string): Promise<Block | undefined> {
    const bytes = await this.db.get(K.block(hashHex))
    return bytes === undefined ? undefined : decodeBlock(this.net, bytes)
  }

  async finalHashAt(height: number): Promise<string | undefined> {
    const v = await this.db.get(K.height(height))
    return v === undefined ? undefined : text.decode(v)
  }

  /** Final blocks from `from` (inclusive), at most `count`, as stored bytes. */
  async finalBlocksFrom(from: number, count: number): Promise<Uint8Array[]> {
    const out: Uint8Array[] = []
    for await (const hash of this.db.values({ gte: K.height(from), lt: 'h0', limit: count })) {
      const bytes = await this.db.get(K.block(text.decode(hash)))
      if (bytes === undefined) throw this.corrupt(`final block ${text.decode(hash)} missing`)
      out.push(bytes)
    }
    return out
  }
}
