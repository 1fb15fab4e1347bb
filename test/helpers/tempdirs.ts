import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

/** Temporary directories for one test file: `make()` in a test, `removeAll()` in afterEach. */
export function tempDirs(prefix: string) {
  const dirs: string[] = []
  return {
    async make(): Promise<string> {
      const d = await mkdtemp(join(tmpdir(), `pos-peer-${prefix}-`))
      dirs.push(d)
      return d
    },
    async removeAll(): Promise<void> {
      for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true })
    },
  }
}
