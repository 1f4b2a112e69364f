// The environment cache's in-use mark: shared by two generations on one environment, removed by the last release.
import {existsSync, mkdtempSync, rmSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {markInUse} from '../../../src/env/cache.js'

t.test("two generations on one environment: the first one's release keeps the in-use mark of the second", async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-in-use-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const mark = path.join(dir, '.mlserve-in-use', String(process.pid))
  const releaseOld = await markInUse(dir)
  const releaseNew = await markInUse(dir)
  await releaseOld()
  t.ok(existsSync(mark), 'still marked in use: env prune leaves it alone')
  await releaseOld()
  t.ok(existsSync(mark), 'a release counts once')
  await releaseNew()
  t.notOk(existsSync(mark), 'the last release removes the mark')
})
