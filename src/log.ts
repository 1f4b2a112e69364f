// mlserve's own log lines: a tagged line per event, and phases that report how long they took.

export interface Logger {
  info(message: string): void
  warn(message: string): void
  /**
   * Starts a named phase; `done` logs it with its duration and returns the duration in ms. With
   * `live`, a terminal shows the elapsed time while it runs (for long phases such as installs).
   */
  phase(name: string, options?: {live?: boolean}): Phase
}

export interface Phase {
  done(detail?: string): number
}

export interface LogSink {
  write(chunk: string): unknown
}

export interface LoggerOptions {
  readonly now?: () => number
  /** A terminal: live phases redraw their line with the elapsed time every second. */
  readonly tty?: boolean
  /** json: one object per line ({time, level, msg}, plus phase and duration_ms when a phase ends). */
  readonly format?: 'text' | 'json'
}

const CLEAR_LINE = '\r\u001B[K'

export function createLogger(sink: LogSink, options: LoggerOptions = {}): Logger {
  if (options.format === 'json') return jsonLogger(sink, options.now ?? (() => performance.now()))
  const now = options.now ?? (() => performance.now())
  let liveLine: string | undefined
  const line = (level: string, message: string) => {
    sink.write(`${liveLine ? CLEAR_LINE : ''}[mlserve] ${level}${message}\n${liveLine ?? ''}`)
  }

  return {
    info: (message) => line('', message),
    warn: (message) => line('warning: ', message),
    phase(name, phaseOptions) {
      const start = now()
      line('', `${name}...`)
      const ticker =
        options.tty && phaseOptions?.live
          ? setInterval(() => {
              liveLine = `[mlserve] ${name}... ${formatDuration(now() - start)}`
              sink.write(CLEAR_LINE + liveLine)
            }, 1000).unref()
          : undefined
      return {
        done(detail) {
          if (ticker) {
            clearInterval(ticker)
            if (liveLine) sink.write(CLEAR_LINE)
            liveLine = undefined
          }

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

function jsonLogger(sink: LogSink, now: () => number): Logger {
  const line = (level: string, msg: string, extra?: Record<string, unknown>) => {
    sink.write(`${JSON.stringify({time: new Date().toISOString(), level, msg, ...extra})}\n`)
  }

  return {
    info: (message) => line('info', message),
    warn: (message) => line('warning', message),
    phase(name) {
      const start = now()
      line('info', `${name}...`, {phase: name})
      return {
        done(detail) {
          const ms = now() - start
          line('info', detail ? `${name}: ${detail}` : name, {phase: name, duration_ms: Math.round(ms)})
          return ms
        },
      }
    },
  }
}

/**
 * A sink that turns the scorers' prefixed output lines ("[scorer 0] text") into JSON lines
 * ({time, level, source, msg}), for --log-format json.
 */
export function jsonLines(sink: LogSink): LogSink {
  return {
    write(chunk: string) {
      const match = /^\[([^\]]*)\] (.*)\n?$/s.exec(chunk)
      const [source, msg] = match ? [match[1], match[2]] : [undefined, chunk.replace(/\n$/, '')]
      return sink.write(`${JSON.stringify({time: new Date().toISOString(), level: 'info', source, msg})}\n`)
    },
  }
}

/** A logger that drops everything, for callers and tests that do not want output. */
export const silentLogger: Logger = {
  info() {},
  warn() {},
  phase: () => ({done: () => 0}),
}
