import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { ChainConfig } from '../../src/core/params.js'
import { activeValidators } from '../../src/core/state.js'
import { Peer, type PeerOptions } from '../../src/node/peer.js'

/** Wait until `cond()` is true, checking every `everyMs`; fails with `what` after `timeoutMs`. */
export async function waitFor(
  cond: () => boolean | Promise<boolean>,
  timeoutMs: number,
  what: string,
  everyMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    if (await cond()) return
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Real peers on 127.0.0.1 (free ports), each bootstrapping to the first; stopped by `stopAll`. */
export class TestNet {
  readonly peers: Peer[] = []
  private readonly dirs: string[] = []

  constructor(readonly net: ChainConfig) {}

  async start(stake: number, opts: Partial<PeerOptions> & { persistent?: boolean } = {}): Promise<Peer> {
    let dataDir = opts.dataDir
    if (dataDir === undefined && opts.persistent === true) {
      dataDir = await mkdtemp(join(tmpdir(), 'pos-peer-net-'))
      this.dirs.push(dataDir)
    }
    const first = this.peers.find((p) => p !== undefined)
    const peer = await Peer.start({
      net: this.net,
      stake,
      host: '127.0.0.1',
      port: 0,
      bootstrap: first === undefined ? [] : [first.listenAddrs()[0]],
      ...opts,
      dataDir,
    })
    this.peers.push(peer)
    return peer
  }

  async stopAll(): Promise<void> {
    const bounded = (p: Peer) =>
      Promise.race([
        p.stop({ graceful: false }),
        new Promise((_, reject) =>
          setTimeout(() => reject(new Error(`peer ${p.peerId} did not stop in 10 s`)), 10_000).unref(),
        ),
      ])
    const results = await Promise.allSettled(this.peers.map(bounded))
    for (const r of results) if (r.status === 'rejected') console.error(String(r.reason))
    for (const d of this.dirs.splice(0)) await rm(d, { recursive: true, force: true })
  }
}

/** One line per peer of what a failed network test needs to see: chains, votes, members, drops. */
export function describePeers(peers: readonly Peer[], readingIds: readonly string[] = []): string {
  const short = (hex: string) => hex.slice(-6)
  return peers
    .map((p) => {
      const c = p.chain
      const missing = readingIds.filter((id) => !c.finalReadings.has(id)).length
      const rejected = Object.entries(p.gossipStats()).flatMap(([t, st]) =>
        [...st.rejected].map(([k, n]) => `${t}/${k}:${n}`),
      )
      const votes = [...c.latestVotes()].map(
        ([v, vote]) => `${short(v)}@${vote.slot % 1000}->${vote.target.slice(0, 6)}`,
      )
      const members = [...activeValidators(p.config.params, c.root.state, c.head.slot)].map(
        ([v, s]) => `${short(v)}=${s}`,
      )
      return [
        `peer ${short(p.publicKeyHex)} stake ${p.stake} root #${c.root.height} head #${c.head.height}/${c.head.hashHex.slice(0, 6)}`,
        `tree ${c.size} mempool ${p.pools().mempool} orphans ${p.pools().orphans} conns ${p.connectedPeers().length}`,
        `missing ${missing} members [${members}] votes [${votes}] rejected [${rejected}]`,
      ].join(' ')
    })
    .join('\n')
}

/** Wait until every reading id is final on every peer; on timeout print `describePeers(dump)`. */
export async function waitFinalOnAll(
  peers: readonly Peer[],
  ids: readonly string[],
  timeoutMs: number,
  what: string,
  dump: readonly Peer[] = peers,
): Promise<void> {
  await waitFor(() => peers.every((p) => ids.every((id) => p.chain.finalReadings.has(id))), timeoutMs, what).catch(
    (err) => {
      console.log(describePeers(dump, ids))
      throw err
    },
  )
}
