// Follows a classic-builder JSON stream: progress lines for the log, the image id, cache hits per step,
// and on failure the failing step with its last output lines.
import type {BuildMessage} from './engine.js'

/** What the build said, folded: enough to report progress, success and failure. */
export interface BuildTrace {
  /** "Step 3/14 : RUN ..." lines, in order. */
  readonly steps: string[]
  /** Steps (their "Step n/m : ..." line) the daemon took from its cache. */
  readonly cached: string[]
  /** The built image id (sha256:…), once known. */
  imageId?: string
  /** The daemon's error, when the build failed. */
  error?: string
  /** The step that was running when the build failed, and its last output lines. */
  failedStep?: string
  readonly output: string[]
}

const OUTPUT_LINES_KEPT = 40

export function createBuildTrace(): BuildTrace {
  return {steps: [], cached: [], output: []}
}

/** Folds one message into the trace; returns the lines worth printing (progress and step output). */
export function traceBuildMessage(trace: BuildTrace, message: BuildMessage): string[] {
  if (message.aux?.ID) trace.imageId = message.aux.ID
  if (message.error !== undefined || message.errorDetail?.message !== undefined) {
    trace.error = (message.errorDetail?.message ?? message.error ?? '').trim()
    trace.failedStep = trace.steps.at(-1)
    return [`error: ${trace.error}`]
  }

  const text = message.stream ?? (message.status ? `${message.status}${message.progress ? ` ${message.progress}` : ''}\n` : '')
  const printed: string[] = []
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd()
    if (!line) continue
    if (/^Step \d+\/\d+ : /.test(line)) {
      trace.steps.push(line)
      trace.output.length = 0
    } else if (line.includes('Using cache')) {
      const step = trace.steps.at(-1)
      if (step) trace.cached.push(step)
    } else {
      const built = /^Successfully built ([0-9a-f]{12,64})$/.exec(line)
      if (built && !trace.imageId) trace.imageId = built[1]
      trace.output.push(line)
      if (trace.output.length > OUTPUT_LINES_KEPT) trace.output.shift()
    }

    printed.push(line)
  }

  return printed
}
