// The image's PID 1 (templates/docker/init.py), run as PID 1 of a new PID namespace (unshare, as root):
// it reaps orphans, forwards stop signals to mlserve and exits with mlserve's status.
import {spawn, spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import path from 'node:path'

import t from 'tap'

import {REPO_ROOT} from '../../helpers/toolchain.js'

const INIT = path.join(REPO_ROOT, 'templates/docker/init.py')
const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0
// The interpreter itself, not a launcher script (pyenv's python3 is a shell script that execs it): PID 1
// is then Python from its first instruction.
const python = spawnSync('python3', ['-c', 'import sys; print(sys.executable)'], {encoding: 'utf8'}).stdout.trim()
const asPid1 = (command: string) => ['--pid', '--fork', '--mount-proc', python, '-I', '-S', INIT, '/bin/sh', '-c', command]

t.test(
  "orphans handed to PID 1 are reaped; the exit status is the child's",
  {skip: canUnshare ? false : 'needs root and unshare'},
  async (t) => {
    // The subshell starts sleep and exits at once: sleep is reparented to PID 1, which must wait for it.
    const result = spawnSync('unshare', asPid1('(sleep 0.3 &); sleep 1.5; ps -A -o stat=,comm=; exit 7'), {encoding: 'utf8'})
    t.equal(result.status, 7, result.stderr)
    t.notMatch(result.stdout, /^Z/m, `no zombie left:\n${result.stdout}`)
    t.match(result.stdout, /python3/, 'the init is still there')

    const killed = spawnSync('unshare', asPid1('kill -KILL $$'), {encoding: 'utf8'})
    t.equal(killed.status, 128 + 9, 'a child killed by a signal: 128 + its number')
  },
)

t.test(
  'SIGTERM to PID 1 reaches the child, whose own exit status PID 1 then returns',
  {skip: canUnshare ? false : 'needs root and unshare', timeout: 60_000},
  async (t) => {
    const proc = spawn('unshare', asPid1('trap "echo draining; exit 0" TERM; echo ready; while :; do sleep 0.1; done'), {
      stdio: ['ignore', 'pipe', 'inherit'],
    })
    t.teardown(() => {
      if (proc.exitCode === null) proc.kill('SIGKILL')
    })
    let out = ''
    await new Promise<void>((resolve) => {
      proc.stdout.on('data', (chunk: Buffer) => {
        out += chunk.toString()
        if (out.includes('ready')) resolve()
      })
    })
    // The namespace's PID 1 is unshare's only child.
    const init = Number(readFileSync(`/proc/${proc.pid}/task/${proc.pid}/children`, 'utf8').trim())
    t.ok(init > 0)
    process.kill(init, 'SIGTERM')
    const code = await new Promise<number | null>((resolve) => {
      proc.on('close', (status) => resolve(status))
    })
    t.equal(code, 0)
    t.match(out, /ready\ndraining\n/)
  },
)

t.test(
  'a SIGTERM that comes before the child has started is not lost',
  {skip: canUnshare ? false : 'needs root and unshare', timeout: 60_000},
  async (t) => {
    // Many inits, each sent SIGTERM as soon as it has forked its child (before the child has run): with
    // the handlers installed only after the fork, a signal in that window found PID 1 without one and
    // was dropped, and that init never exited (seen in CI as a 10-minute hang of the test above).
    const childrenOf = (pid: number): number[] => {
      try {
        return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(' ').filter(Boolean).map(Number)
      } catch {
        return []
      }
    }

    // Running and not yet a zombie.
    const alive = (pid: number): boolean => {
      try {
        return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'))
      } catch {
        return false
      }
    }

    // One init at a time: the wait for the fork spins synchronously (to send the signal within microseconds
    // of it), and a spin never runs while another init's clock is running, so the 20 s below is real time
    // for the init it guards (with 20 inits started at once, the later spins held the event loop and the
    // earlier inits' deadlines ran out under a loaded machine's CI).
    const outcomes: string[] = []
    for (let run = 0; run < 20; run++) {
      const proc = spawn('unshare', asPid1('trap "exit 0" TERM; while :; do sleep 0.1; done'), {stdio: 'ignore'})
      const closed = new Promise<string>((resolve) => {
        proc.on('close', (status, signal) => resolve(status === null ? `killed by ${signal}` : String(status)))
      })
      let init = 0
      const spinUntil = Date.now() + 20_000
      while (alive(proc.pid!) && Date.now() < spinUntil && (init === 0 || childrenOf(init).length === 0)) {
        init = childrenOf(proc.pid!)[0] ?? 0
      }
      if (init > 0) process.kill(init, 'SIGTERM')
      // A namespace's PID 1 outlives unshare: a stuck one is killed itself (everything in it goes too).
      const timer = setTimeout(() => {
        for (const pid of [init, proc.pid!].filter((pid) => pid > 0)) {
          try {
            process.kill(pid, 'SIGKILL')
          } catch {}
        }
      }, 20_000)
      // eslint-disable-next-line no-await-in-loop
      outcomes.push(`${init > 0 ? 'signalled' : 'never forked'}: ${await closed}`)
      clearTimeout(timer)
      if (!/^signalled: (0|143)$/.test(outcomes.at(-1)!)) break
    }
    // 0: the child's trap ran; 143: the signal came before the child's trap existed and ended it.
    t.same(
      outcomes.filter((outcome) => !/^signalled: (0|143)$/.test(outcome)),
      [],
      "every init passed the early SIGTERM on and exited with the child's status (none had to be killed)",
    )
  },
)
