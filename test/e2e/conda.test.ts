// The conda manager, against the conda-compatible stand-in in test/conda-standin (conda itself cannot
// be installed on these machines): env create from conda.yaml, the cache record, and the failure paths.
import {mkdtempSync, readdirSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'
import {fetch} from 'undici'

import {runMlserve, startMlserve} from '../helpers/servers.js'
import {REPO_ROOT, fixtureModel, toolchainEnv} from '../helpers/toolchain.js'

const scratch = mkdtempSync(path.join(tmpdir(), 'mlserve-conda-'))
// Real environments are hundreds of MB: leave none behind.
t.teardown(() => rmSync(scratch, {recursive: true, force: true}))
const envsDir = path.join(scratch, 'conda-envs')
const root = path.join(scratch, 'root')
const env = (extra: Record<string, string> = {}) =>
  toolchainEnv({
    MLSERVE_ENV_ROOT: root,
    MLFLOW_CONDA_HOME: path.join(REPO_ROOT, 'test', 'conda-standin'),
    CONDA_ENVS_PATH: envsDir,
    ...extra,
  })
const condaEnvs = () => readdirSync(envsDir).filter((name) => name.startsWith('mlserve-'))

t.test('serves a model from a conda env built from its conda.yaml', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('sum'), '--env-manager', 'conda'], {env: env()})
  t.teardown(() => server.stop())
  t.match(server.stderr(), /warning: Use of conda is discouraged/)
  t.match(server.stderr(), /creating conda environment mlserve-\w+/)
  t.match(server.stderr(), new RegExp(`python 3\\.11\\.7 at ${envsDir}/mlserve-\\w+/bin/python`), "the scorer runs with the env's own python")
  const res = await fetch(`${server.url}/invocations`, {
    method: 'POST',
    headers: {'content-type': 'application/json'},
    body: '{"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}',
  })
  t.equal(await res.text(), '{"predictions": [3]}')
  t.equal(condaEnvs().length, 1)

  const again = await runMlserve(['prepare-env', '-m', fixtureModel('sum'), '--env-manager', 'conda'], {
    env: env({MLFLOW_DISABLE_ENV_MANAGER_CONDA_WARNING: 'TRUE'}),
  })
  t.equal(again.code, 0)
  t.match(again.stderr, /using cached environment|cached /)
  t.notMatch(again.stderr, /creating conda environment/)
  t.notMatch(again.stderr, /Use of conda is discouraged/, 'the warning can be turned off')
})

t.test("a conda env removed behind mlserve's back is built again", async (t) => {
  for (const name of condaEnvs()) rmSync(path.join(envsDir, name), {recursive: true, force: true})
  const result = await runMlserve(['prepare-env', '-m', fixtureModel('sum'), '--env-manager', 'conda'], {env: env()})
  t.equal(result.code, 0, result.stderr)
  t.match(result.stderr, /recorded in the cache is damaged: its interpreter \S+\/bin\/python is gone; building it again/)
  t.equal(condaEnvs().length, 1)
})

t.test("a conda prefix without mlserve's record (an interrupted build) is removed, not reused", async (t) => {
  rmSync(root, {recursive: true, force: true})
  const result = await runMlserve(['prepare-env', '-m', fixtureModel('sum'), '--env-manager', 'conda'], {env: env()})
  t.equal(result.code, 0, result.stderr)
  t.match(result.stderr, /creating conda environment/)
  t.equal(condaEnvs().length, 1)
})

t.test('env prune removes a conda env from disk, not just its record', async (t) => {
  t.equal(condaEnvs().length, 1)
  const listed = await runMlserve(['env', 'list', '--json'], {env: env()})
  const [entry] = JSON.parse(listed.stdout).envs
  t.match(entry, {manager: 'conda', prefix: new RegExp(`^${envsDir}/mlserve-\\w+$`)})
  t.ok(entry.sizeBytes > 1024 * 1024, "its size is the conda env's")
  const pruned = await runMlserve(['env', 'prune', '--older-than', '0m'], {env: env()})
  t.equal(pruned.code, 0, pruned.stderr)
  t.match(pruned.stdout, /1 removed, 0 kept\./)
  t.same(condaEnvs(), [], 'the conda env is gone from disk, as prune reported')
  t.same(JSON.parse((await runMlserve(['env', 'list', '--json'], {env: env()})).stdout).envs, [])
})

t.test('no conda: a clear error naming where it looked', async (t) => {
  const result = await runMlserve(['prepare-env', '-m', fixtureModel('sum'), '--env-manager', 'conda'], {
    env: env({MLFLOW_CONDA_HOME: path.join(scratch, 'no-conda-here')}),
  })
  t.equal(result.code, 26)
  t.match(result.stderr, /Could not find Conda executable at .*no-conda-here\/bin\/conda/)
})
