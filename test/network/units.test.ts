import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PeerId } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { beforeAll, describe, expect, it } from 'vitest'
import { encodeCanonical } from '../../src/core/encoding.js'
import { BlockError, RecordError } from '../../src/core/errors.js'
import { emptyGossipStats, SpamMeter, verdictOf } from '../../src/network/gossip.js'
import { decodeStatus, encodeStatus, MAX_STATUS_PEERS, type Status } from '../../src/network/reqresp.js'
import type { Logger } from '../../src/util/logger.js'
import { testNetwork } from '../helpers/fixtures.js'

const net = testNetwork()
let from: PeerId
beforeAll(async () => {
  from = peerIdFromPrivateKey(await generateKeyPair('Ed25519'))
})

describe('the gossip verdict adapter', () => {
  const run = (handler: () => 'accept' | 'ignore') => {
    const stats = emptyGossipStats().candidates
    const lines: string[] = []
    const log: Logger = (level, msg) => lines.push(`${level} ${msg}`)
    const out = verdictOf('candidates', handler, from, new Uint8Array(), stats, log)
    return { ...out, stats, lines }
  }

  it('accept and ignore are counted as such', () => {
    expect(run(() => 'accept')).toMatchObject({ verdict: 'accept', stats: { accepted: 1, ignored: 0 } })
    expect(run(() => 'ignore')).toMatchObject({ verdict: 'ignore', stats: { accepted: 0, ignored: 1 } })
  })

  it('a typed REJECT error becomes reject, counted by code, with a debug line naming the sender', () => {
    const r = run(() => {
      throw new BlockError('REJECT', 'INVALID_SIGNATURE', { record: 'block' })
    })
    expect(r.verdict).toBe('reject')
    expect(r.code).toBe('INVALID_SIGNATURE')
    expect(r.stats.rejected.get('INVALID_SIGNATURE')).toBe(1)
    expect(r.lines.some((l) => l.startsWith('debug reject candidates') && l.includes(from.toString()))).toBe(true)
  })

  it('a typed IGNORE error becomes ignore, never a penalty', () => {
    const r = run(() => {
      throw new RecordError('IGNORE', 'DUPLICATE')
    })
    expect(r.verdict).toBe('ignore')
    expect(r.stats.ignored).toBe(1)
    expect(r.stats.rejected.size).toBe(0)
  })

  it('an untyped error is our bug: ignored (the sender is not punished) and logged as an error', () => {
    const r = run(() => {
      throw new TypeError('oops')
    })
    expect(r.verdict).toBe('ignore')
    expect(r.stats.rejected.size).toBe(0)
    expect(r.lines.some((l) => l.startsWith('error bug: candidates'))).toBe(true)
  })
})

describe('status codec', () => {
  const status: Status = {
    networkId: net.id,
    headHash: new Uint8Array(32).fill(7),
    headHeight: 1234,
    finalizedHash: new Uint8Array(32).fill(9),
    finalizedHeight: 1200,
    peers: ['/ip4/127.0.0.1/tcp/9090/p2p/12D3KooWabc'],
    stake: 30,
  }

  it('round-trips', () => {
    expect(decodeStatus(encodeStatus(status))).toEqual(status)
  })

  it('sends at most MAX_STATUS_PEERS peers and refuses more, or overlong or non-string entries', () => {
    const many = { ...status, peers: Array.from({ length: 40 }, (_, i) => `/ip4/127.0.0.1/tcp/${i}`) }
    expect(decodeStatus(encodeStatus(many)).peers).toHaveLength(MAX_STATUS_PEERS)
    expect(() => decodeStatus(encodeWith(Array.from({ length: MAX_STATUS_PEERS + 1 }, () => 'x')))).toThrow(/BAD_FIELD/)
    expect(() => decodeStatus(encodeWith(['x'.repeat(201)]))).toThrow(/BAD_FIELD/)
    expect(() => decodeStatus(encodeWith([42]))).toThrow(/BAD_FIELD/)
  })

  it('refuses truncated and wrongly typed fields', () => {
    const bytes = encodeStatus(status)
    expect(() => decodeStatus(bytes.subarray(0, bytes.length - 3))).toThrow(RecordError)
    expect(() => decodeStatus(encodeWith(status.peers, { headHeight: -1 }))).toThrow(RecordError)
    expect(() => decodeStatus(encodeWith(status.peers, { networkId: new Uint8Array(31) }))).toThrow(RecordError)
  })

  /** A status tuple with chosen (possibly invalid) fields, encoded as on the wire. */
  function encodeWith(peers: readonly unknown[], over: Record<string, unknown> = {}): Uint8Array {
    const s = { ...status, ...over }
    return encodeCanonical([s.networkId, s.headHash, s.headHeight, s.finalizedHash, s.finalizedHeight, peers, s.stake])
  }
})

describe('spam score', () => {
  it('is 0 within the tolerance, one point per message beyond it down to -200, and halves every half-life', () => {
    let now = 0
    const meter = new SpamMeter(() => now, 10, 1000)
    for (let i = 0; i < 10; i++) meter.add('p')
    expect(meter.score('p')).toBe(0)
    for (let i = 0; i < 30; i++) meter.add('p')
    expect(meter.score('p')).toBeCloseTo(-30)
    expect(meter.score('other')).toBe(0)
    now = 1000
    expect(meter.score('p')).toBeCloseTo(-10)
    for (let i = 0; i < 1000; i++) meter.add('p')
    expect(meter.score('p')).toBe(-200)
    now = 20_000
    expect(meter.score('p')).toBe(0)
  })
})
