export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent'

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 }

export type Logger = (level: Exclude<LogLevel, 'silent'>, msg: string) => void

/** A leveled logger writing one line per message to `sink` (stderr by default). */
export function createLogger(
  level: LogLevel,
  sink: (line: string) => void = (l) => process.stderr.write(`${l}\n`),
): Logger {
  return (lvl, msg) => {
    if (ORDER[lvl] >= ORDER[level]) sink(`${new Date().toISOString()} ${lvl.padEnd(5)} ${msg}`)
  }
}

export const silentLogger: Logger = () => {}
