import { openSync } from 'node:fs'
import { format } from 'node:util'
import type { ComponentLogger } from '@libp2p/interface'
import { enable, logger as libp2pLogger } from '@libp2p/logger'
import { destination, pino } from 'pino'
import pretty from 'pino-pretty'

export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'
export type LogFormat = 'pretty' | 'json'

export type Logger = (level: Exclude<LogLevel, 'silent'>, msg: string) => void

export const silentLogger: Logger = () => {}

export interface LogOptions {
  readonly level: LogLevel
  /** pretty: one coloured line for a person; json: pino's one object per line, for tools. */
  readonly format: LogFormat
  /** Write here (appended) instead of stderr. */
  readonly file?: string
  /** Colours in the pretty format (a terminal, not a file). */
  readonly color?: boolean
}

export interface AppLogger {
  readonly log: Logger
  /** At debug: libp2p's own loggers, written through the same pino logger (component in `lib`). */
  readonly libp2p?: ComponentLogger
}

/**
 * The process's logger: pino, pretty or JSON, to stderr or a file, written synchronously (a line
 * logged just before exit is not lost). At debug, libp2p's debug output joins it.
 */
export function createAppLogger(o: LogOptions): AppLogger {
  const level = o.level
  // Opened here, so a path that cannot be written is an error at start, not a silent loss.
  const dest = o.file === undefined ? 2 : openSync(o.file, 'a')
  const stream =
    o.format === 'pretty'
      ? pretty({
          destination: dest,
          sync: true,
          colorize: o.file === undefined && (o.color ?? false),
          translateTime: 'SYS:HH:MM:ss.l',
          ignore: 'pid,hostname',
        })
      : destination({ dest, sync: true })
  const p = pino({ level, base: undefined }, stream)
  const log: Logger = (lvl, msg) => p[lvl](msg)
  if (level !== 'debug') return { log }
  const lib = p.child({ lib: 'libp2p' })
  enable('libp2p*,-*:trace')
  // weald (libp2p's `debug`) starts a line with its own ISO date when colours are off: drop it.
  const sink = (...args: unknown[]) => lib.debug(format(...args).replace(/^\S+Z /, ''))
  const forComponent = (name: string): ReturnType<ComponentLogger['forComponent']> => {
    const l = libp2pLogger(name) as unknown as Record<string, unknown>
    for (const f of [l, l.error, l.trace] as Record<string, unknown>[]) {
      f.log = sink
      f.useColors = false
    }
    l.newScope = (scope: string) => forComponent(`${name}:${scope}`)
    return l as unknown as ReturnType<ComponentLogger['forComponent']>
  }
  const libp2p: ComponentLogger = { forComponent }
  return { log, libp2p }
}
