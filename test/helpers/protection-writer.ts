// Child process for the slashing-protection crash test: asks the store for permission to sign one
// slot after another and prints each slot only once permission is granted (what a proposer does
// right before it signs), until it is killed.
import { Store } from '../../src/storage/store.js'
import { testNetwork } from './fixtures.js'

const [dir, from] = process.argv.slice(2)
const store = new Store(testNetwork(), { path: dir })
await store.open()
for (let slot = Number(from); slot < Number(from) + 1_000_000; slot++) {
  if (await store.mayPropose(slot, 1)) process.stdout.write(`${slot}\n`)
}
await store.close()
