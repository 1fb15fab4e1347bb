import { readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import type { Peer } from '../node/peer.js'

/**
 * `pos-peer health`: is the peer using this data dir up, synced and connected? The running peer
 * writes `health.json` into its data dir every few seconds; this reads it. It needs no open port
 * and no HTTP server, so a container's HEALTHCHECK can run it (exit 0 healthy, 1 not).
 */
export const HEALTH_FILE = 'health.json'
const WRITE_EVERY_MS = 5000
/** Older than this, the peer that wrote it is gone or stuck. */
export const STALE_MS = 30_000

export interface HealthReport {
  readonly time: string
  readonly peerId: string
  readonly synced: boolean
  readonly peers: number
  readonly head: number
  readonly final: number
}

/** Keep `health.json` fresh while the peer runs; returns the stop function. */
export function writeHealth(peer: Peer, dir: string): () => void {
  const file = join(dir, HEALTH_FILE)
  const write = () => {
    const report: HealthReport = {
      time: new Date().toISOString(),
      peerId: peer.peerId,
      synced: peer.synced(),
      peers: peer.connectedPeers().length,
      head: peer.head().height,
      final: peer.finalized().height,
    }
    try {
      // Written whole, then renamed: a reader never sees half a file.
      writeFileSync(`${file}.tmp`, `${JSON.stringify(report)}\n`)
      renameSync(`${file}.tmp`, file)
    } catch {
      // a read-only data dir: the peer still works; health reports it as unknown
    }
  }
  write()
  const timer = setInterval(write, WRITE_EVERY_MS)
  timer.unref()
  return () => clearInterval(timer)
}

/** Healthy: a fresh report, synced, at least one peer. Returns the line to print and the verdict. */
export function checkHealth(dir: string, nowMs: number): { ok: boolean; line: string } {
  let r: HealthReport
  try {
    r = JSON.parse(readFileSync(join(dir, HEALTH_FILE), 'utf8')) as HealthReport
  } catch {
    return { ok: false, line: `unhealthy: no ${HEALTH_FILE} in ${dir} (is a peer running with this --data-dir?)` }
  }
  const age = nowMs - Date.parse(r.time)
  const what = `head #${r.head}, final #${r.final}, ${r.peers} peer(s)`
  if (!(age < STALE_MS)) return { ok: false, line: `unhealthy: last report ${Math.round(age / 1000)} s old (${what})` }
  if (!r.synced) return { ok: false, line: `unhealthy: still syncing (${what})` }
  if (r.peers < 1) return { ok: false, line: `unhealthy: no peers connected (${what})` }
  return { ok: true, line: `healthy: synced, ${what}` }
}
