import { readdirSync, readFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'

/**
 * The dependency arrows of docs/ARCHITECTURE.md: cli -> api -> node -> sync -> network/storage
 * -> core -> util, never back up, never sideways between folders of one floor, and no cycles.
 */
const FLOOR: Record<string, number> = { util: 0, core: 1, storage: 2, network: 2, sync: 3, node: 4, api: 5, cli: 6 }
const SRC = resolve(__dirname, '../src')

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

/** Relative imports of a file (static, dynamic and type-only), as src-relative .ts paths. */
function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8')
  const out: string[] = []
  for (const m of text.matchAll(/(?:from\s+|import\s*\(\s*)'(\.{1,2}\/[^']+)'/g)) {
    out.push(relative(SRC, resolve(dirname(file), m[1])).replace(/\.js$/, '.ts'))
  }
  return out
}

const folder = (rel: string) => (rel.includes('/') ? rel.split('/')[0] : 'util')

type Graph = Map<string, string[]>

function upwardImports(graph: Graph): string[] {
  const wrong: string[] = []
  for (const [file, deps] of graph) {
    for (const dep of deps) {
      const [a, b] = [folder(file), folder(dep)]
      if (a !== b && FLOOR[b] >= FLOOR[a]) wrong.push(`${file} -> ${dep}`)
    }
  }
  return wrong
}

function cyclesOf(graph: Graph): string[] {
  const cycles: string[] = []
  const state = new Map<string, 'open' | 'done'>()
  const walk = (file: string, path: string[]) => {
    if (state.get(file) === 'done') return
    if (state.get(file) === 'open') {
      cycles.push([...path.slice(path.indexOf(file)), file].join(' -> '))
      return
    }
    state.set(file, 'open')
    for (const dep of graph.get(file) ?? []) walk(dep, [...path, file])
    state.set(file, 'done')
  }
  for (const file of graph.keys()) walk(file, [])
  return cycles
}

const graph: Graph = new Map(sources(SRC).map((f) => [relative(SRC, f), importsOf(f)]))

describe('architecture', () => {
  it('every source folder has a floor', () => {
    for (const file of graph.keys()) expect(FLOOR[folder(file)], file).toBeTypeOf('number')
  })

  it('imports only point down (or within a folder)', () => {
    expect(upwardImports(graph)).toEqual([])
  })

  it('has no import cycles', () => {
    expect(cyclesOf(graph)).toEqual([])
  })

  it('the checks see an upward import, a sideways one and a cycle (they can fail)', () => {
    const bad: Graph = new Map([
      ['core/a.ts', ['core/b.ts', 'node/x.ts']],
      ['core/b.ts', ['core/a.ts']],
      ['network/n.ts', ['storage/s.ts']],
      ['node/x.ts', ['core/a.ts']],
    ])
    expect(upwardImports(bad)).toEqual(['core/a.ts -> node/x.ts', 'network/n.ts -> storage/s.ts'])
    expect(cyclesOf(bad)).toEqual(['core/a.ts -> core/b.ts -> core/a.ts', 'core/a.ts -> node/x.ts -> core/a.ts'])
  })
})
