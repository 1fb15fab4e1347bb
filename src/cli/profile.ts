import { readFileSync, writeFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join } from 'node:path'

/** Root of the per-user profiles: $POS_PEER_HOME, or ~/.pos-peer. */
export function profilesRoot(): string {
  return process.env.POS_PEER_HOME ?? join(homedir(), '.pos-peer')
}

export function profileDir(network: string, name: string): string {
  return join(profilesRoot(), network, name)
}

/** Candidate default profiles, in order: 1, 2, 3, ... (the first one not in use is taken). */
export function* defaultProfiles(network: string, max = 64): Generator<string> {
  for (let i = 1; i <= max; i++) yield profileDir(network, String(i))
}

/** What a profile remembers of its last run (profile.json in its data dir). */
export interface ProfileMemory {
  readonly stake: number
  readonly lastRun: string
}

const MEMORY_FILE = 'profile.json'

export function recallProfile(dir: string): ProfileMemory | undefined {
  try {
    const m = JSON.parse(readFileSync(join(dir, MEMORY_FILE), 'utf8')) as Partial<ProfileMemory>
    return Number.isSafeInteger(m.stake) && typeof m.lastRun === 'string'
      ? { stake: m.stake as number, lastRun: m.lastRun }
      : undefined
  } catch {
    return undefined
  }
}

/** Best effort: a profile that cannot be written is still a working peer. */
export function rememberProfile(dir: string, memory: ProfileMemory): void {
  try {
    writeFileSync(join(dir, MEMORY_FILE), `${JSON.stringify(memory)}\n`)
  } catch {
    // read-only data dir: nothing to remember
  }
}

/**
 * The default profiles in the order to try them for a given --stake: first those whose identity
 * last ran with this stake (so restarting terminals in another order keeps each window's
 * identity), then the rest in order.
 */
export function profilesFor(network: string, stake: number, max = 64): string[] {
  const all = [...defaultProfiles(network, max)]
  const same = all.filter((d) => recallProfile(d)?.stake === stake)
  return [...same, ...all.filter((d) => !same.includes(d))]
}
