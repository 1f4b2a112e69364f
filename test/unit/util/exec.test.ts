// The one way mlserve runs a subprocess, with real processes: results, failures, and process groups that go whole.
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {describeFailure, run, tailLines} from '../../../src/util/exec.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-exec-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))
const env = {PATH: process.env.PATH}

const alive = (pid: number) => {
  try {
    process.kill(pid, 0)
    return readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.[0] !== 'Z'
  } catch {
    return false
  }
}

async function eventually(check: () => boolean, withinMs = 10_000): Promise<boolean> {
  const deadline = Date.now() + withinMs
  // eslint-disable-next-line no-await-in-loop
  while (Date.now() < deadline && !check()) await new Promise((resolve) => setTimeout(resolve, 50))
  return check()
}

const pidIn = async (file: string) => {
  await eventually(() => existsSync(file) && readFileSync(file, 'utf8').trim() !== '')
  return Number(readFileSync(file, 'utf8'))
}

t.test('a result, never a throw: exit code, output, and exactly the environment given', async (t) => {
  const result = await run('sh', ['-c', 'echo "out ${HOME:-no home}"; echo err >&2; exit 3'], {env})
  t.match(result, {exitCode: 3, stdout: 'out no home', stderr: 'err', spawnError: undefined, timedOut: false})
  t.equal(describeFailure('sh', result), 'exit code 3')

  const missing = await run('/nonexistent/tool', [], {env})
  t.equal(missing.spawnError, 'ENOENT')
  t.equal(describeFailure('/nonexistent/tool', missing), '/nonexistent/tool was not found')

  const slow = await run('sleep', ['30'], {env, timeoutMs: 100})
  t.equal(describeFailure('sleep', slow), 'it timed out')
})

t.test('the last lines of output', async (t) => {
  t.equal(tailLines('a\nb\nc\nd\n\n', 2), 'c\nd')
  t.equal(tailLines(''), '')
})

t.test('a group run ends its whole process group: on abort, and what it left behind when it exits', async (t) => {
  const pidFile = path.join(scratch, 'grandchild.pid')
  const stop = new AbortController()
  const running = run('sh', ['-c', `sleep 300 >/dev/null 2>&1 & echo $! > ${pidFile}; wait`], {env, group: true, signal: stop.signal})
  const grandchild = await pidIn(pidFile)
  t.teardown(() => alive(grandchild) && process.kill(grandchild, 'SIGKILL'))
  stop.abort(new Error('stopped'))
  await t.rejects(running, {message: 'stopped'}, 'rejects with the abort reason')
  t.ok(await eventually(() => !alive(grandchild)), "the child's own child is gone too")

  const leftFile = path.join(scratch, 'left.pid')
  const result = await run('sh', ['-c', `sleep 300 >/dev/null 2>&1 & echo $! > ${leftFile}`], {env, group: true})
  t.equal(result.exitCode, 0)
  const left = await pidIn(leftFile)
  t.teardown(() => alive(left) && process.kill(left, 'SIGKILL'))
  t.ok(await eventually(() => !alive(left)), 'a process the child left running in its group is ended')
})
