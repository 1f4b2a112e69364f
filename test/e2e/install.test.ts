// Installing mlserve as a user installs a CLI: the tarball `npm pack` makes (prebuilt dist/, templates,
// the manifest) installs with `npm install --global` into a fresh prefix, pulls no development
// dependency, and the installed `mlserve` on PATH serves the bundled example.
import {execFileSync} from 'node:child_process'
import {existsSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {spawnProc, waitForPing} from '../helpers/servers.js'
import {REPO_ROOT, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

t.test('npm pack, npm install --global <tarball>, then `mlserve serve` from PATH', {timeout: 600_000}, async (t) => {
  const work = mkdtempSync(path.join(tmpdir(), 'mlserve-install-'))
  t.teardown(() => rmSync(work, {recursive: true, force: true}))
  const prefix = path.join(work, 'prefix')
  const env = toolchainEnv({npm_config_prefix: prefix, PATH: `${path.join(prefix, 'bin')}${path.delimiter}${process.env.PATH ?? ''}`})

  // The README's install line, run in a scratch directory (the tarball lands there). The suite built dist/
  // already: --ignore-scripts keeps prepack from rebuilding it under the other tests running now.
  execFileSync(
    'sh',
    ['-c', `npm install --global --no-audit --no-fund --prefer-offline "$(npm pack --ignore-scripts ${JSON.stringify(REPO_ROOT)} | tail -n 1)"`],
    {
      cwd: work,
      env,
      stdio: 'pipe',
    },
  )
  const installed = path.join(prefix, 'lib', 'node_modules', 'mlserve')
  for (const file of [
    'bin/run.js',
    'dist/commands/serve.js',
    'oclif.manifest.json',
    'templates/python/preload.py',
    'templates/python/app/mlserve_fastpath.py',
  ]) {
    t.ok(existsSync(path.join(installed, file)), `the package has ${file}`)
  }

  const {devDependencies} = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {devDependencies: Record<string, string>}
  const pulled = Object.keys(devDependencies).filter((name) => existsSync(path.join(installed, 'node_modules', name)))
  t.same(pulled, [], 'no development dependency was installed')
  t.ok(existsSync(path.join(prefix, 'bin', 'mlserve')), 'mlserve is on PATH')

  const serve = spawnProc(
    'mlserve',
    ['serve', '-m', path.join(REPO_ROOT, 'examples/sklearn-iris'), '--env-manager', 'local', '--python', toolchainPython(), '-p', '0'],
    {env},
  )
  t.teardown(async () => serve.stop())
  const [, url] = await serve.waitForOutput(/listening on (http:\/\/\S+)/)
  await waitForPing(url!, serve)
  const res = await fetch(`${url}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: readFileSync(path.join(REPO_ROOT, 'examples/sklearn-iris/serving_input_example.json')),
  })
  t.equal(res.status, 200)
  t.equal(await res.text(), '{"predictions": [0, 1, 2]}')
  const exit = await serve.stop('SIGINT')
  t.equal(exit.code, 0, 'Ctrl-C: the installed mlserve exits 0')
})
