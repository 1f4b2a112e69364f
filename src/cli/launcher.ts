// Follows the launcher's fate under npm (npx, npm exec, npm run): npm runs mlserve under `sh -c`, which
// passes no signal on, so a SIGTERM to npm kills the shell and npm and would leave mlserve serving.

/** How often the parent pid is checked. */
const POLL_MS = 500

/** Whether npm started this process (npm sets npm_lifecycle_event for npx, npm exec and npm run). */
export const launchedByNpm = (env: NodeJS.ProcessEnv): boolean => env.npm_lifecycle_event !== undefined

/**
 * Calls `onGone` once when the process that started this one exits (the parent pid changes: the
 * orphan was adopted by init or a subreaper). Returns what stops watching.
 */
export function watchParent(onGone: (parentPid: number) => void, pollMs = POLL_MS): () => void {
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(timer)
    onGone(parent)
  }, pollMs)
  timer.unref()
  return () => clearInterval(timer)
}
