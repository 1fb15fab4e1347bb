import { createServer } from 'node:net'
import { type Multiaddr, multiaddr } from '@multiformats/multiaddr'

/** The port the first peer on a machine listens on; later ones find it there. */
export const DEFAULT_PORT = 9090

/** A bad --bootstrap (or similar) value: a usage error. */
export class NetworkConfigError extends Error {
  override name = 'NetworkConfigError'
}

export class PortInUseError extends Error {
  override name = 'PortInUseError'
}

/** `/ip4/1.2.3.4/tcp/9090[/p2p/<id>]`, `host:port` or `dns-name:port` to a multiaddr. */
export function parseBootstrap(addr: string): Multiaddr {
  const s = addr.trim()
  if (s.startsWith('/')) {
    try {
      const ma = multiaddr(s)
      if (!ma.protoNames().includes('tcp')) throw new Error('no tcp')
      return ma
    } catch {
      throw new NetworkConfigError(`--bootstrap ${addr}: not a TCP multiaddr (expected e.g. /ip4/127.0.0.1/tcp/9090)`)
    }
  }
  const m = /^(\[?[0-9a-fA-F:.]+\]?|[a-zA-Z0-9.-]+):(\d{1,5})$/.exec(s)
  const port = m === null ? Number.NaN : Number(m[2])
  if (m === null || port < 1 || port > 65535) {
    throw new NetworkConfigError(`--bootstrap ${addr}: expected host:port (e.g. 127.0.0.1:9090) or a multiaddr`)
  }
  const host = m[1].replace(/^\[|\]$/g, '')
  const proto = /^\d+\.\d+\.\d+\.\d+$/.test(host) ? 'ip4' : host.includes(':') ? 'ip6' : 'dns4'
  return multiaddr(`/${proto}/${host}/tcp/${port}`)
}

export function portFree(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const srv = createServer()
    srv.once('error', () => resolve(false))
    srv.listen({ host, port, exclusive: true }, () => srv.close(() => resolve(true)))
  })
}

export const isLoopback = (host: string) => host === 'localhost' || host.startsWith('127.') || host === '::1'

export function isLoopbackAddr(ma: Multiaddr): boolean {
  return isLoopback(ma.toOptions().host)
}

/** A dialled multiaddr and the remote address of the resulting connection name the same host:port. */
export function sameTarget(remote: Multiaddr, target: Multiaddr): boolean {
  const a = remote.toOptions()
  const b = target.toOptions()
  return a.port === b.port && (a.host === b.host || (isLoopback(a.host) && isLoopback(b.host)))
}

/**
 * The port to listen on and the bootstrap list to dial. Explicit port: an error when taken.
 * Undefined: 9090, or (taken: another peer of this machine has it) a free port plus a dial to 9090.
 */
export async function chooseListenPort(
  host: string,
  port: number | undefined,
  bootstrap: readonly string[],
  defaultPort = DEFAULT_PORT,
): Promise<{ port: number; bootstrap: Multiaddr[]; defaultPeer?: Multiaddr }> {
  const addrs = bootstrap.map(parseBootstrap)
  if (port === undefined) {
    if (await portFree(host, defaultPort)) return { port: defaultPort, bootstrap: addrs }
    const local = isLoopback(host) || host === '0.0.0.0' ? '127.0.0.1' : host
    const defaultPeer = multiaddr(`/ip4/${local}/tcp/${defaultPort}`)
    return { port: 0, bootstrap: [defaultPeer, ...addrs], defaultPeer }
  }
  if (port !== 0 && !(await portFree(host, port))) {
    throw new PortInUseError(
      `port ${port} on ${host} is already in use: pick another --port, or leave it out to get a free one`,
    )
  }
  return { port, bootstrap: addrs }
}
