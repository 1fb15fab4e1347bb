import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { toHex } from '../../src/core/bytes.js'
import { type Signer, signerFromLibp2pKey } from '../../src/core/crypto.js'
import { type ChainConfig, makeChainConfig } from '../../src/core/params.js'
import { createStake, encodeStake, type Reading } from '../../src/core/records.js'
import { activeStake, supplyOf } from '../../src/core/state.js'
import { StakeError, TransferError } from '../../src/node/chain-service.js'
import type { Peer } from '../../src/node/peer.js'
import { loadOrCreateIdentity } from '../../src/storage/identity.js'
import { TestNet, waitFor } from '../helpers/peers.js'

/**
 * A genesis network of real peers over TCP: alice 1000 and bob 1000 tokens, carol and mallory
 * none. Stake must be backed, transfers land on every peer, a stranger's conjured stake never
 * counts.
 */
describe('a genesis network over TCP', () => {
  const dirs: Record<string, string> = {}
  const ids: Record<string, string> = {}
  let malloryKey: Signer
  let net: ChainConfig
  let tn: TestNet
  let alice: Peer
  let bob: Peer
  let carol: Peer
  let mallory: Peer

  beforeAll(async () => {
    for (const who of ['alice', 'bob', 'carol', 'mallory']) {
      dirs[who] = await mkdtemp(join(tmpdir(), `pos-peer-ledger-${who}-`))
      const key = await loadOrCreateIdentity(dirs[who])
      ids[who] = peerIdFromPrivateKey(key).toString()
      if (who === 'mallory') malloryKey = signerFromLibp2pKey(key)
    }
    const keyOf = async (who: string) => toHex(signerFromLibp2pKey(await loadOrCreateIdentity(dirs[who])).publicKey)
    net = makeChainConfig(
      { name: 'ledgertest', slotMs: 500, stakeTtlSlots: 200, unbondingSlots: 6 },
      new Map([
        [await keyOf('alice'), 1000],
        [await keyOf('bob'), 1000],
      ]),
    )
    tn = new TestNet(net)
    alice = await tn.start(300, { dataDir: dirs.alice })
    bob = await tn.start(200, { dataDir: dirs.bob })
    carol = await tn.start(0, { dataDir: dirs.carol })
    mallory = await tn.start(0, { dataDir: dirs.mallory })
  }, 30_000)

  afterAll(async () => {
    await tn.stopAll()
    for (const d of Object.values(dirs)) await rm(d, { recursive: true, force: true })
  })

  it('stake beyond the balance is refused; a transfer lands on every peer; the receiver can then stake', async () => {
    const everyone = () => [alice, bob, carol, mallory]
    await waitFor(
      () =>
        everyone().every(
          (p) => activeStake(net.params, p.finalized().state, alice.publicKeyHex, p.head().slot) === 300,
        ),
      20_000,
      "alice's stake final on every peer",
    )
    // Carol holds nothing: her stake is refused with the one message, before anything is sent.
    await expect(carol.setStake(10)).rejects.toThrow(StakeError)
    await expect(carol.setStake(10)).rejects.toThrow(/more than this account holds: 0/)
    await expect(alice.submitTransfer(ids.carol, 5000)).rejects.toThrow(TransferError)
    await expect(alice.submitTransfer('not-an-address', 5)).rejects.toThrow(/not a pos-peer address/)

    const t = await alice.submitTransfer(ids.carol, 150)
    expect(t.nonce).toBe(1)
    await waitFor(
      () => everyone().every((p) => p.finalized().state.accounts.get(carol.publicKeyHex)?.free === 150),
      20_000,
      'the transfer final on every peer',
    )
    expect(carol.funds()).toMatchObject({ free: 150, stakeLimit: 150 })
    const accounts = alice.accounts()
    expect(accounts.find((a) => a.address === ids.carol)).toMatchObject({ free: 150, bonded: 0, nonce: 0 })
    expect(accounts.find((a) => a.address === ids.alice)?.nonce).toBe(1)

    await carol.setStake(100)
    await waitFor(
      () =>
        everyone().every(
          (p) => activeStake(net.params, p.finalized().state, carol.publicKeyHex, p.head().slot) === 100,
        ),
      20_000,
      "carol's stake final on every peer",
    )
    const v = alice.validators().find((r) => r.address === ids.carol)
    expect(v).toMatchObject({ stake: 100, bonded: 100 })
    // Every peer agrees on the supply: genesis plus one reward per block, nothing burned.
    for (const p of everyone()) expect(supplyOf(p.finalized().state)).toBe(2000 + p.finalized().height)
  }, 60_000)

  it('a stranger with no tokens gossips a huge stake: no peer relays it into a block, it never counts', async () => {
    for (let seq = 1; seq <= 5; seq++) {
      await mallory.network.publish('stakes', encodeStake(createStake(net, malloryKey, 2 ** 32, seq)))
    }
    // Work for the network (it is quiet without records): readings, final on every peer.
    const readings: Reading[] = []
    for (let i = 0; i < 3; i++) readings.push(await carol.submitReading(70 + i))
    await waitFor(
      () => [alice, bob, carol].every((p) => readings.every((r) => p.isFinal(r.idHex))),
      20_000,
      'the readings final on every peer',
    )
    for (const p of [alice, bob, carol]) {
      expect(p.finalized().state.stakes.has(mallory.publicKeyHex)).toBe(false)
      expect(p.head().state.stakes.has(mallory.publicKeyHex)).toBe(false)
    }
    // Ignored (tokens may be on their way in a block), not relayed.
    expect(alice.gossipStats().stakes.ignored + bob.gossipStats().stakes.ignored).toBeGreaterThan(0)
  }, 40_000)
})
