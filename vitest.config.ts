import { defineConfig } from 'vitest/config'

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    pool: 'forks',
    // Files run one after another: the network tests start many real peers and processes, and
    // sharing two cores between files only makes their timing noisier.
    fileParallelism: false,
  },
})
