// No process and no temporary directory outlives mlserve killed with SIGKILL: a scorer busy with a
// prediction, its socket directory, and an installer (uv and the build backend it started) mid-build.
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {Agent, fetch} from 'undici'

import {MLSERVE_BIN, eventually, isRunning as running, killIfAlive, spawnProc, startMlserve} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-orphans-'))
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))

const client = new Agent({pipelining: 0})
t.teardown(() => client.close())

/** The --uds argument of a running uvicorn scorer, read from /proc. */
const socketOf = (pid: number): string | undefined => {
  const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')
  const index = argv.indexOf('--uds')
  return index === -1 ? undefined : argv[index + 1]
}

t.test('kill -9 of mlserve while a prediction sleeps: the scorer and its socket directory go too', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('control')])
  t.teardown(() => server.stop('SIGKILL'))
  const sleeping = fetch(`${server.url}/invocations`, {
    dispatcher: client,
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: JSON.stringify({dataframe_split: {columns: ['action'], data: [['sleep:120']]}}),
  }).then(
    async (res) => res.text(),
    () => 'connection closed',
  )
  const [, found] = await server.waitForOutput(/control model: sleeping in pid (\d+)/)
  const pid = Number(found)
  t.teardown(() => killIfAlive(pid))
  const socket = socketOf(pid)
  t.ok(socket && existsSync(path.dirname(socket)), 'the scorer listens in a socket directory')

  server.child.kill('SIGKILL')
  await server.exited
  t.equal(await sleeping, 'connection closed', 'the client sees the connection close')
  t.ok(await eventually(() => !running(pid)), 'the busy scorer does not wait for its prediction to finish')
  t.ok(await eventually(() => !existsSync(path.dirname(socket!))), 'the socket directory is removed')
})

/**
 * A model whose one requirement is a local package with an in-tree build backend that records its pid
 * and sleeps: uv builds it in a Python process of its own, a grandchild of mlserve.
 */
function slowBuildModel(): {model: string; pidFile: string} {
  const pkg = path.join(scratch, 'slowpkg')
  const pidFile = path.join(scratch, 'build.pid')
  mkdirSync(pkg, {recursive: true})
  writeFileSync(
    path.join(pkg, 'pyproject.toml'),
    '[project]\nname = "slowpkg"\nversion = "0.1"\n\n[build-system]\nrequires = []\nbuild-backend = "slow_backend"\nbackend-path = ["."]\n',
  )
  writeFileSync(
    path.join(pkg, 'slow_backend.py'),
    `import os, time\nwith open(${JSON.stringify(pidFile)}, "w") as f:\n    f.write(str(os.getpid()))\ntime.sleep(300)\n`,
  )
  const model = path.join(scratch, 'model')
  mkdirSync(model, {recursive: true})
  const base = fixtureModel('sum')
  for (const name of ['MLmodel', 'python_model.pkl']) writeFileSync(path.join(model, name), readFileSync(path.join(base, name)))
  writeFileSync(path.join(model, 'python_env.yaml'), 'python: 3.11.7\nbuild_dependencies: []\ndependencies:\n- -r requirements.txt\n')
  writeFileSync(path.join(model, 'requirements.txt'), `slowpkg @ file://${pkg}\n`)
  return {model, pidFile}
}

t.test('kill -9 of mlserve during an environment build: the installer and its build processes go too', async (t) => {
  const {model, pidFile} = slowBuildModel()
  const root = path.join(scratch, 'envs')
  const proc = spawnProc(process.execPath, [MLSERVE_BIN, 'prepare-env', '-m', model, '--no-speedups'], {
    env: toolchainEnv({MLSERVE_ENV_ROOT: root}),
    cwd: scratch,
  })
  t.teardown(() => proc.stop('SIGKILL'))
  await proc.waitForOutput(/installing 1 requirements/)
  t.ok(await eventually(() => existsSync(pidFile) && readFileSync(pidFile, 'utf8') !== '', 120_000), 'the build backend runs')
  const buildPid = Number(readFileSync(pidFile, 'utf8'))
  t.teardown(() => killIfAlive(buildPid))
  const uvPid = Number(readFileSync(`/proc/${buildPid}/stat`, 'utf8').split(') ')[1]!.split(' ')[1])
  t.teardown(() => killIfAlive(uvPid))
  t.not(uvPid, proc.child.pid, 'the build runs in a grandchild of mlserve')
  const requirementsDir = readlinkSync(`/proc/${uvPid}/cwd`)
  t.match(path.basename(requirementsDir), /^mlserve-reqs-/, "the installer runs in the model's staged requirements directory")

  proc.child.kill('SIGKILL')
  await proc.exited
  t.ok(await eventually(() => !running(buildPid)), 'the build backend process is gone')
  t.ok(await eventually(() => !running(uvPid)), 'its parent (the installer) is gone')
  t.ok(await eventually(() => !existsSync(requirementsDir)), 'the staged requirements directory is removed')
})
