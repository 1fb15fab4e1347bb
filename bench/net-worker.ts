// One benchmark peer as its own process. Prints compact event lines on stdout for bench/net.ts:
//   R <peerId> <addr> | C <hash> <local> <t> | S <readingId> <t> | F <readingId> <t> | H <slot> <head>
//   | B <readingId> <t> (in a canonical block) | M <rssBytes> | Y <height> <finalizedHeight> <t>
import { makeChainConfig, slotAt, slotStart } from '../src/core/params.js'
import { Peer } from '../src/node/peer.js'

const args = new Map<string, string>()
for (let i = 2; i < process.argv.length; i += 2) args.set(process.argv[i], process.argv[i + 1])
const net = makeChainConfig({ name: 'bench', slotMs: Number(args.get('--slot-ms') ?? 1000) })
// Buffered: one write per 10 ms instead of one per line (a 3000-block sync prints ~12,000 lines).
let pending: string[] = []
const flush = () => {
  if (pending.length > 0) process.stdout.write(`${pending.join('\n')}\n`)
  pending = []
}
setInterval(flush, 10).unref()
process.on('exit', flush)
const out = (line: string) => {
  pending.push(line)
}
const bootstrap = args.get('--bootstrap')
const peer = await Peer.start({
  net,
  stake: Number(args.get('--stake') ?? 0),
  host: '127.0.0.1',
  port: 0,
  bootstrap: bootstrap === undefined ? [] : [bootstrap],
  dataDir: args.get('--data-dir'),
})
out(`R ${peer.peerId} ${peer.listenAddrs()[0]}`)
peer.events.on('candidate', ({ node, local }) => out(`C ${node.hashHex} ${local ? 1 : 0} ${Date.now()}`))
const conns = () => out(`P ${peer.connectedPeers().length}`)
peer.events.on('peer:connect', conns)
peer.events.on('peer:disconnect', conns)
peer.events.on('block', ({ node }) => {
  const t = Date.now()
  for (const r of node.block?.readings ?? []) out(`B ${r.idHex} ${t}`)
})
peer.events.on('finalized', ({ node }) => {
  const t = Date.now()
  for (const r of node.block?.readings ?? []) out(`F ${r.idHex} ${t}`)
  out(`Y ${peer.head().height} ${node.height} ${t}`)
})
peer.events.on('sync:progress', ({ height }) => out(`Y ${height} ${peer.finalized().height} ${Date.now()}`))
// Sample the head in the middle of every slot.
const sample = () => {
  const now = Date.now()
  const slot = slotAt(net.params, now)
  out(`H ${slot} ${peer.head().hashHex}`)
  setTimeout(sample, slotStart(net.params, slot + 1) + net.params.slotMs / 2 - now).unref()
}
sample()
setInterval(() => out(`M ${process.memoryUsage().rss}`), 2000).unref()
// Stake announced but not counting yet, in the final state (the bench measures once it is 0).
setInterval(
  () => out(`W ${peer.validators().reduce((x, v) => x + v.waiting, 0)} ${peer.finalized().state.queue.length}`),
  1000,
).unref()
process.stdin.setEncoding('utf8')
process.stdin.on('data', (chunk: string) => {
  for (const line of chunk.split('\n')) {
    if (line.startsWith('bpm ')) {
      peer
        .submitReading(Number(line.slice(4)))
        .then((r) => out(`S ${r.idHex} ${Date.now()}`))
        .catch(() => {})
    } else if (line === 'stop') {
      void peer.stop({ graceful: false }).then(() => {
        flush()
        process.exit(0)
      })
    }
  }
})
