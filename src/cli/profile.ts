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
