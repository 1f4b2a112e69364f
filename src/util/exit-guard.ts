// What must not outlive mlserve (child process groups, temporary directories), undone by a watchdog even on SIGKILL.
import {spawn, type ChildProcess} from 'node:child_process'
import type {Socket} from 'node:net'

/**
 * The watchdog: a tiny sh in its own process group that reads `+g<pgid>` / `-g<pgid>` / `+p<path>` /
 * `-p<path>` lines from a pipe only mlserve holds (Node opens it close-on-exec, so no child inherits it).
 * When the pipe reaches end of file, mlserve has exited, however it exited (SIGKILL and crashes included):
 * the watchdog then SIGKILLs every process group still registered and removes every path still registered.
 * It ignores SIGINT and SIGHUP, which a terminal sends to mlserve's process group, so it outlives mlserve.
 */
export const WATCHDOG_SCRIPT = `
set -f
trap '' INT HUP
nl='
'
groups=''
paths=''
while IFS= read -r line; do
  item=\${line#??}
  case $line in
    +g*) groups="$groups$item$nl" ;;
    +p*) paths="$paths$item$nl" ;;
    -g*) kept=''; IFS=$nl; for x in $groups; do [ "$x" = "$item" ] || kept="$kept$x$nl"; done; unset IFS; groups=$kept ;;
    -p*) kept=''; IFS=$nl; for x in $paths; do [ "$x" = "$item" ] || kept="$kept$x$nl"; done; unset IFS; paths=$kept ;;
  esac
done
IFS=$nl
for g in $groups; do kill -s KILL -- "-$g" 2>/dev/null; done
for p in $paths; do rm -rf -- "$p"; done
`

let watchdog: ChildProcess | undefined
let unavailable = false
/** Things registered and not yet released: at 0 the watchdog is let go, so that mlserve reaps it while alive. */
let guarded = 0

function send(line: string): void {
  if (unavailable) return
  if (!watchdog) {
    try {
      watchdog = spawn('/bin/sh', ['-c', WATCHDOG_SCRIPT, 'mlserve-watchdog'], {detached: true, stdio: ['pipe', 'ignore', 'ignore']})
    } catch {
      unavailable = true
      return
    }

    watchdog.on('error', () => {
      unavailable = true
    })
    watchdog.stdin?.on('error', () => {
      unavailable = true
    })
    // Neither the watchdog nor its pipe keeps mlserve running.
    watchdog.unref()
    ;(watchdog.stdin as Socket | null)?.unref()
  }

  watchdog.stdin?.write(line + '\n')
  guarded += line.startsWith('+') ? 1 : -1
  if (guarded === 0) {
    watchdog.stdin?.end()
    watchdog = undefined
  }
}

/** A path or group name with a newline cannot be written as one line: such a thing is not guarded. */
const oneLine = (text: string) => !text.includes('\n')

/**
 * Until the returned function is called, the process group `pgid` is SIGKILLed if mlserve exits without
 * calling it (the caller kills the group itself on its ordinary exit paths).
 */
export function guardProcessGroup(pgid: number): () => void {
  send(`+g${pgid}`)
  let released = false
  return () => {
    if (released) return
    released = true
    send(`-g${pgid}`)
  }
}

/** Until the returned function is called, `dir` is removed if mlserve exits without calling it. */
export function guardPath(dir: string): () => void {
  if (!oneLine(dir)) return () => {}
  send(`+p${dir}`)
  let released = false
  return () => {
    if (released) return
    released = true
    send(`-p${dir}`)
  }
}
