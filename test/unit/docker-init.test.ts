// The image's PID 1 (templates/docker/init.py), run as PID 1 of a new PID namespace (unshare, as root):
// it reaps orphans, forwards stop signals to mlserve and exits with mlserve's status.
import {spawn, spawnSync} from 'node:child_process'
import {readFileSync} from 'node:fs'
import path from 'node:path'

import t from 'tap'

import {REPO_ROOT} from '../helpers/toolchain.js'

const INIT = path.join(REPO_ROOT, 'templates/docker/init.py')
const canUnshare = process.getuid?.() === 0 && spawnSync('unshare', ['--pid', '--fork', '--mount-proc', 'true']).status === 0
const asPid1 = (command: string) => ['--pid', '--fork', '--mount-proc', 'python3', '-I', '-S', INIT, '/bin/sh', '-c', command]

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
  {skip: canUnshare ? false : 'needs root and unshare'},
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
