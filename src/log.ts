// mlserve's own log lines: a tagged line per event, and phases that report how long they took.

export interface Logger {
  info(message: string): void
  warn(message: string): void
  /** Starts a named phase; `done` logs it with its duration and returns the duration in ms. */
  phase(name: string): Phase
}

export interface Phase {
  done(detail?: string): number
}

export interface LogSink {
  write(chunk: string): unknown
}

export function createLogger(sink: LogSink, now: () => number = () => performance.now()): Logger {
  const line = (level: string, message: string) => {
    sink.write(`[mlserve] ${level}${message}\n`)
  }

  return {
    info: (message) => line('', message),
    warn: (message) => line('warning: ', message),
    phase(name) {
      const start = now()
      line('', `${name}...`)
      return {
        done(detail) {
          const ms = now() - start
          line('', detail ? `${name}: ${detail} (${formatDuration(ms)})` : `${name} (${formatDuration(ms)})`)
          return ms
        },
      }
    },
  }
}

export function formatDuration(ms: number): string {
  return ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(1)} s`
}

/** A logger that drops everything, for callers and tests that do not want output. */
export const silentLogger: Logger = {
  info() {},
  warn() {},
  phase: () => ({done: () => 0}),
}
