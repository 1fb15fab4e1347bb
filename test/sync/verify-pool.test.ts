import { describe, expect, it } from 'vitest'
import { knownValid, verifySignature } from '../../src/core/crypto.js'
import { createReading, signatureChecks } from '../../src/core/records.js'
import { VerifyPool } from '../../src/sync/verify-pool.js'
import { createBlock } from '../helpers/blocks.js'
import { testNetwork, testSigners } from '../helpers/fixtures.js'

describe('signature checks on worker threads (range sync)', () => {
  it('remembers exactly the valid signatures of a batch; an invalid one is still refused', async () => {
    const net = testNetwork()
    const [a, b] = await testSigners(2, 'pool')
    const blocks = Array.from({ length: 40 }, (_, i) =>
      createBlock(net, i % 2 === 0 ? a : b, {
        height: i + 1,
        slot: i + 1,
        parent: net.id,
        readings: [createReading(net, b, 60 + i, 1000 + i)],
        stakes: [],
      }),
    )
    const checks = blocks.flatMap((x) => signatureChecks(net, x))
    expect(checks).toHaveLength(80)
    // Tamper with one block signature and one reading signature.
    const bad = [checks[7], checks[30]].map((c) => {
      const signature = Uint8Array.from(c.signature)
      signature[0] ^= 0xff
      return { ...c, signature }
    })
    // And a small-order key's universal signature (the identity as key and R, S = 0), which
    // node:crypto accepts: the threads refuse it as the main thread does.
    const identity = new Uint8Array(32)
    identity[0] = 1
    const forged = new Uint8Array(64)
    forged[0] = 1
    bad.push({ ...checks[0], publicKey: identity, signature: forged })
    const good = checks.filter((_, i) => i !== 7 && i !== 30)
    for (const c of good) expect(knownValid(c.publicKey, c.message, c.signature)).toBe(false)
    const pool = new VerifyPool({ size: 2 })
    try {
      await pool.verifyAndRemember([...good, ...bad])
    } finally {
      await pool.close()
    }
    for (const c of good) expect(knownValid(c.publicKey, c.message, c.signature)).toBe(true)
    for (const c of bad) {
      expect(knownValid(c.publicKey, c.message, c.signature)).toBe(false)
      expect(verifySignature(c.publicKey, c.message, c.signature)).toBe(false)
    }
  })

  it('an answer cut short (pool closed) never shifts the others onto the wrong checks', async () => {
    const net = testNetwork()
    const [a] = await testSigners(1, 'pool-close')
    const good = Array.from({ length: 400 }, (_, i) =>
      signatureChecks(
        net,
        createBlock(net, a, { height: i + 1, slot: i + 1, parent: net.id, readings: [], stakes: [] }),
      ),
    ).flat()
    // The first thread's part is forged, the second's is valid; the first answer comes back empty,
    // as it does when close() stops a thread mid-batch.
    const forged = good.slice(0, 200).map((c) => ({ ...c, signature: Uint8Array.from(c.signature).fill(7, 0, 8) }))
    const checks = [...forged, ...good.slice(200)]
    const pool = new VerifyPool({
      size: 2,
      runPart: (part, index, onThread) => (index === 0 ? Promise.resolve([]) : onThread(part)),
    })
    try {
      await pool.verifyAndRemember(checks)
    } finally {
      await pool.close()
    }
    for (const c of forged) expect(knownValid(c.publicKey, c.message, c.signature)).toBe(false)
    for (const c of good.slice(200)) expect(knownValid(c.publicKey, c.message, c.signature)).toBe(true)
  })
})
