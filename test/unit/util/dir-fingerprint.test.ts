// A local model directory's digest: the same while nothing changes (bytecode left out), another when a
// file is added, removed, rewritten or renamed.
import {mkdirSync, mkdtempSync, renameSync, rmSync, utimesSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {fingerprintDir} from '../../../src/util/dir-fingerprint.js'

t.test('unchanged files give the same digest; any change gives another', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-fp-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  writeFileSync(path.join(dir, 'MLmodel'), 'flavors: {}\n')
  mkdirSync(path.join(dir, 'code'))
  writeFileSync(path.join(dir, 'code', 'm.py'), 'x = 1\n')
  const first = await fingerprintDir(dir)
  t.equal(await fingerprintDir(dir), first, 'nothing changed')
  mkdirSync(path.join(dir, 'code', '__pycache__'))
  writeFileSync(path.join(dir, 'code', '__pycache__', 'm.cpython-311.pyc'), 'bytes')
  t.equal(await fingerprintDir(dir), first, 'bytecode a scorer wrote is not a change')

  const seen = new Set([first])
  const changed = async (what: string) => {
    const digest = await fingerprintDir(dir)
    t.notOk(seen.has(digest), what)
    seen.add(digest)
  }

  writeFileSync(path.join(dir, 'model.pkl'), 'weights')
  await changed('a file added')
  writeFileSync(path.join(dir, 'model.pkl'), 'weights, more')
  await changed('a file rewritten (size)')
  utimesSync(path.join(dir, 'model.pkl'), new Date(2020, 1, 1), new Date(2020, 1, 1))
  await changed('a file touched (mtime)')
  renameSync(path.join(dir, 'model.pkl'), path.join(dir, 'model2.pkl'))
  await changed('a file renamed')
  rmSync(path.join(dir, 'code', 'm.py'))
  await changed('a file removed')
  rmSync(path.join(dir, 'model2.pkl'))
  writeFileSync(path.join(dir, 'code', 'm.py'), 'x = 1\n')
  utimesSync(path.join(dir, 'code', 'm.py'), new Date(2020, 1, 1), new Date(2020, 1, 1))
  await changed('the same names with another mtime')
  t.match(await fingerprintDir(path.join(dir, 'absent')), /^unreadable:ENOENT:/, 'a missing directory never equals anything')
})
