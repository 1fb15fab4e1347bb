import { closeSync, fdatasyncSync, fstatSync, openSync, readSync, writeSync } from 'node:fs'
import { sha256Buffer } from '../core/crypto.js'

/** What this key has signed: the last slot, and the highest source epoch. */
export interface Signed {
  readonly slot: number
  readonly source: number
}

const MAGIC = Buffer.from('pspr')
const RECORD = 32
const BODY = 20

/** The checksum a record ends with: the first bytes of the sha256 of its body. */
const checksum = (b: Buffer): Buffer => sha256Buffer(b.subarray(0, BODY)).subarray(0, RECORD - BODY)

function encode(s: Signed): Buffer {
  const b = Buffer.alloc(RECORD)
  MAGIC.copy(b, 0)
  b.writeBigUInt64BE(BigInt(s.slot), 4)
  b.writeBigUInt64BE(BigInt(s.source), 12)
  checksum(b).copy(b, BODY)
  return b
}

function decode(b: Buffer): Signed | undefined {
  if (b.byteLength < RECORD || !b.subarray(0, 4).equals(MAGIC)) return undefined
  if (!checksum(b).equals(b.subarray(BODY, RECORD))) return undefined
  return { slot: Number(b.readBigUInt64BE(4)), source: Number(b.readBigUInt64BE(12)) }
}

/**
 * Slashing protection on disk (docs/PROTOCOL.md section 8): a small file of its own, written and
 * flushed (fdatasync) synchronously before a block is signed. In LevelDB the same write waited
 * behind the chain's block writes and the event loop: under reading spam it took up to 750 ms,
 * and the candidate went out that late (finality slipped by two slots when several did).
 *
 * Two checksummed records, written in turn: a write torn by a crash spoils only the record being
 * written, whose block was never signed, and the other still holds everything signed before.
 * `file` undefined: in memory only (an ephemeral peer).
 */
export class SlashingProtection {
  private signed: Signed
  /** The record the next write goes to (the one not holding `signed`). */
  private next = 0

  private constructor(
    private readonly fd: number | undefined,
    records: (Signed | undefined)[],
    earlier: Signed | undefined,
  ) {
    let best: Signed = earlier ?? { slot: -1, source: 0 }
    for (const [i, r] of records.entries()) {
      if (r === undefined) continue
      if (r.slot > best.slot || (r.slot === best.slot && r.source > best.source)) this.next = 1 - i
      best = { slot: Math.max(best.slot, r.slot), source: Math.max(best.source, r.source) }
    }
    this.signed = best
  }

  /**
   * Open (or create) the file. `earlier`: what an older store kept elsewhere (merged in: the
   * larger of each). Throws when both records were written and neither is valid (corrupt).
   */
  static open(file: string | undefined, earlier?: Signed): SlashingProtection {
    if (file === undefined) return new SlashingProtection(undefined, [], earlier)
    // Created if missing, then opened again for positional writes ('a+' appends wherever asked).
    closeSync(openSync(file, 'a+'))
    const fd = openSync(file, 'r+')
    try {
      const buf = Buffer.alloc(2 * RECORD)
      const read = fstatSync(fd).size === 0 ? 0 : readSync(fd, buf, 0, buf.byteLength, 0)
      const records = [decode(buf.subarray(0, Math.min(read, RECORD))), decode(buf.subarray(RECORD, read))]
      // Both records written once and neither valid: damaged. A file of one record or less that
      // is not valid was torn in its first write ever, before anything was signed: as new.
      if (read > RECORD && records.every((r) => r === undefined)) {
        throw new Error(`slashing protection file ${file} holds no valid record`)
      }
      return new SlashingProtection(fd, records, earlier)
    } catch (err) {
      closeSync(fd)
      throw err
    }
  }

  /**
   * May this key sign a block of `slot` whose source epoch is `sourceEpoch`? Only for a slot after
   * every slot it signed and a source no lower than any it signed. A yes is on the disk itself,
   * not only in the OS cache, when this returns.
   */
  permit(slot: number, sourceEpoch: number): boolean {
    if (slot <= this.signed.slot || sourceEpoch < this.signed.source) return false
    const signed = { slot, source: sourceEpoch }
    if (this.fd !== undefined) {
      writeSync(this.fd, encode(signed), 0, RECORD, this.next * RECORD)
      fdatasyncSync(this.fd)
      this.next = 1 - this.next
    }
    this.signed = signed
    return true
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd)
  }
}
