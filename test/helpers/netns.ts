import { execFileSync } from 'node:child_process'
import { mkdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs'

/**
 * Separate network hosts on one Linux machine: one network namespace per host, each with one veth
 * link (eth0) to a bridge that lives in a namespace of its own (so the machine's own network is
 * never touched), and an /etc/netns/<ns>/hosts file that `ip netns exec` mounts over /etc/hosts,
 * so host names resolve as docker-compose service names do. Needs root and iproute2.
 */
export class NetnsLab {
  private readonly prefix: string
  private readonly created: string[] = []
  private readonly hostDirs: string[] = []
  readonly ips = new Map<string, string>()

  private constructor(readonly hosts: readonly string[]) {
    this.prefix = `ppt${process.pid}`
  }

  static available(): boolean {
    if (process.getuid?.() !== 0) return false
    try {
      execFileSync('ip', ['-V'], { stdio: 'ignore' })
      return true
    } catch {
      return false
    }
  }

  /** Create the bridge and one namespace per host (10.231.0.10, .11, ...). */
  static create(hosts: readonly string[]): NetnsLab {
    if (hosts.length > 200) throw new Error('too many hosts')
    NetnsLab.removeStale()
    const lab = new NetnsLab(hosts)
    try {
      lab.build()
    } catch (err) {
      lab.destroy()
      throw err
    }
    return lab
  }

  ns(host: string): string {
    return `${this.prefix}-${host}`
  }

  /** The command prefix that runs a program on `host`. */
  exec(host: string): string[] {
    return ['ip', 'netns', 'exec', this.ns(host)]
  }

  private get switchNs(): string {
    return `${this.prefix}-sw`
  }

  private link(i: number): string {
    return `${this.prefix}v${i}`
  }

  private build(): void {
    const sw = this.switchNs
    this.addNs(sw)
    ip('-n', sw, 'link', 'set', 'lo', 'up')
    ip('-n', sw, 'link', 'add', 'br0', 'type', 'bridge')
    ip('-n', sw, 'link', 'set', 'br0', 'up')
    for (const [i, host] of this.hosts.entries()) this.ips.set(host, `10.231.0.${10 + i}`)
    const hostsFile = [
      '127.0.0.1 localhost',
      '::1 localhost',
      ...this.hosts.map((h) => `${this.ips.get(h)} ${h}`),
      '',
    ].join('\n')
    this.hosts.forEach((host, i) => {
      const ns = this.ns(host)
      this.addNs(ns)
      // Created straight inside the two namespaces: the root namespace never sees the link.
      ip('link', 'add', 'eth0', 'netns', ns, 'type', 'veth', 'peer', 'name', this.link(i), 'netns', sw)
      ip('-n', ns, 'addr', 'add', `${this.ips.get(host)}/24`, 'dev', 'eth0')
      ip('-n', ns, 'link', 'set', 'eth0', 'up')
      ip('-n', ns, 'link', 'set', 'lo', 'up')
      ip('-n', sw, 'link', 'set', this.link(i), 'master', 'br0')
      ip('-n', sw, 'link', 'set', this.link(i), 'up')
      const dir = `/etc/netns/${ns}`
      mkdirSync(dir, { recursive: true })
      this.hostDirs.push(dir)
      writeFileSync(`${dir}/hosts`, hostsFile)
    })
  }

  private addNs(name: string): void {
    ip('netns', 'add', name)
    this.created.push(name)
  }

  /** Cut `host`'s link at the bridge (a partition), or restore it. */
  setLink(host: string, up: boolean): void {
    const i = this.hosts.indexOf(host)
    if (i < 0) throw new Error(`unknown host ${host}`)
    ip('-n', this.switchNs, 'link', 'set', this.link(i), up ? 'up' : 'down')
  }

  /** Remove every namespace (and with them the links) and hosts file this lab made. */
  destroy(): void {
    for (const ns of this.created.splice(0).reverse()) {
      try {
        ip('netns', 'del', ns)
      } catch {
        // already gone
      }
    }
    for (const dir of this.hostDirs.splice(0)) rmSync(dir, { recursive: true, force: true })
    try {
      rmdirSync('/etc/netns') // only when empty: another user's namespaces keep it
    } catch {
      // not empty, or not there
    }
  }

  /** Namespaces left by an earlier run of this helper whose process is gone. */
  private static removeStale(): void {
    const list = execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
    for (const line of list.split('\n')) {
      const m = /^(ppt(\d+)-\S+)/.exec(line)
      if (m === null || Number(m[2]) === process.pid) continue
      if (pidAlive(Number(m[2]))) continue
      try {
        ip('netns', 'del', m[1])
      } catch {
        // raced with its owner
      }
      rmSync(`/etc/netns/${m[1]}`, { recursive: true, force: true })
    }
  }
}

function ip(...args: string[]): void {
  execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 })
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
