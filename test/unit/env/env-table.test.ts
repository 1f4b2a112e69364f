// `env list`'s facts, read from a real cache entry: the mlflow installed in the environment, and a
// "last used" that listing itself never moves (env prune --older-than relies on it).
import {mkdirSync, symlinkSync, utimesSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import t, {type Test} from 'tap'

import {MARKER, ensureBuilt} from '../../../src/cache/build-once.js'
import {ENV_KIND, markInUse} from '../../../src/env/cache.js'
import {listEnvs} from '../../../src/env/inventory.js'

/** A cache entry for a virtualenv whose site-packages holds mlflow 3.17.2 (its record says nothing of mlflow). */
async function cachedEnv(t: Test) {
  const root = t.testdir({})
  const key = 'abc123'
  await ensureBuilt({
    kind: ENV_KIND,
    root,
    key,
    record: {manager: 'virtualenv', python: '3.11.7', mlflow: null, model: '/m'},
    build: async (dir: string) => {
      mkdirSync(path.join(dir, 'bin'), {recursive: true})
      symlinkSync(process.execPath, path.join(dir, 'bin', 'python'))
      const site = path.join(dir, 'lib', 'python3.11', 'site-packages')
      mkdirSync(path.join(site, 'mlflow'), {recursive: true})
      writeFileSync(path.join(site, 'mlflow', '__init__.py'), '')
      mkdirSync(path.join(site, 'mlflow-3.17.2.dist-info'))
      writeFileSync(path.join(site, 'mlflow-3.17.2.dist-info', 'METADATA'), 'Metadata-Version: 2.1\nName: mlflow\nVersion: 3.17.2\n')
      return {}
    },
  })
  return {root, dir: path.join(root, key)}
}

t.test('the mlflow column is the version installed in the environment', async (t) => {
  const {root} = await cachedEnv(t)
  const [env] = await listEnvs(root)
  t.equal(env?.mlflow, '3.17.2')
})

t.test('listing does not reset "last used"; using the environment does', async (t) => {
  const {root, dir} = await cachedEnv(t)
  const old = new Date(Date.now() - 40 * 86_400_000)
  utimesSync(path.join(dir, MARKER), old, old)
  const first = (await listEnvs(root))[0]?.lastUsed
  const second = (await listEnvs(root))[0]?.lastUsed
  t.equal(first, old.toISOString(), 'last used 40 days ago')
  t.equal(second, old.toISOString(), 'still, after a listing read the marker')

  const release = await markInUse(dir)
  await release()
  const used = (await listEnvs(root))[0]?.lastUsed
  t.ok(used && Date.parse(used) > old.getTime(), 'a use moves it')
})

t.test('env list prints a header over aligned columns', async (t) => {
  const {root} = await cachedEnv(t)
  const {envTable} = await import('../../../src/env/env-table.js')
  const lines = envTable(await listEnvs(root))
  t.equal(lines.length, 2)
  const [header, row] = lines as [string, string]
  t.match(header, /^KEY +MANAGER +PYTHON +MLFLOW +SIZE +LAST USED +IN USE +MODEL$/)
  for (const [column, value] of [
    ['MANAGER', 'virtualenv'],
    ['PYTHON', '3.11.7'],
    ['MLFLOW', '3.17.2'],
    ['MODEL', '/m'],
  ]) {
    t.equal(row.indexOf(value!), header.indexOf(column!), `${column} lines up`)
  }
})
