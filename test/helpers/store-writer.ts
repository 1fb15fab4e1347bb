// Child process for the crash test: imports blocks into a real LevelDB store in a loop, printing
// the finalized height after each write, until it is killed.
import { Chain } from '../../src/core/chain.js'
import { Store } from '../../src/storage/store.js'
import { LockstepChain } from './chain-builder.js'
import { testNetwork, testSigners } from './fixtures.js'

const [dir, maxSlots] = process.argv.slice(2)
const net = testNetwork()
const store = new Store(net, { path: dir })
await store.open()
const loaded = await store.loadChain()
const chain = new Chain(net, { root: loaded.root, finalReadings: loaded.finalReadings })
for (const b of loaded.unfinal) await store.saveImport(chain.import(b, Number.MAX_SAFE_INTEGER))
const signers = await testSigners(3, 'crash')
const lock = new LockstepChain(net, signers, [10, 30, 60], chain, chain.head.slot + 1)
for (let i = 0; i < Number(maxSlots); i++) {
  lock.addReading(i % 3, 60 + (i % 50))
  for (const r of lock.step()) await store.saveImport(r)
  process.stdout.write(`${chain.root.height}\n`)
}
await store.close()
