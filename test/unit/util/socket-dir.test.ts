// The scorers' socket directory: TMPDIR when sockets fit under it, else a short directory mlserve owns, else a clear error.
import {mkdtempSync, rmSync, statSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import t, {type Test} from 'tap'

import {SOCKET_PATH_MAX, createSocketDir, fitsSocketPath} from '../../../src/util/socket-dir.js'

/** A short scratch directory (tap's own are too long to hold sockets). */
function scratch(t: Test): string {
  const dir = mkdtempSync('/tmp/mlserve-t-')
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  return dir
}

t.test('TMPDIR too long for a Unix socket path: a short directory instead, and why', async (t) => {
  const base = scratch(t)
  const long = path.join(base, 'x'.repeat(Math.max(1, SOCKET_PATH_MAX - base.length)))
  t.notOk(fitsSocketPath(long))
  const made = await createSocketDir([long, base])
  t.equal(path.dirname(made.dir), base)
  t.match(
    made.fallbackReason,
    new RegExp(`is too long for Unix socket paths \\(\\d+ bytes; sockets under it would pass the ${SOCKET_PATH_MAX}-byte limit\\)`),
  )
  t.equal(statSync(made.dir).mode & 0o777, 0o700, 'private to mlserve')
})

t.test('several models: the model and load levels of the path are counted (a TMPDIR that fits one model only is passed over)', async (t) => {
  const base = scratch(t)
  const room = SOCKET_PATH_MAX - '/mlserve-XXXXXX/9999/s999-999999.sock'.length
  const justFits = path.join(base, 'x'.repeat(Math.max(1, room - base.length - 1)))
  t.ok(fitsSocketPath(justFits), 'one model fits')
  t.notOk(fitsSocketPath(justFits, 2), 'two more levels do not')
  const made = await createSocketDir([justFits, base], 2)
  t.equal(path.dirname(made.dir), base, 'the next candidate')
  t.match(made.fallbackReason, /is too long for Unix socket paths/)
})

t.test('TMPDIR missing or not a directory: the next candidate', async (t) => {
  const base = scratch(t)
  writeFileSync(path.join(base, 'file'), '')
  const made = await createSocketDir([path.join(base, 'missing'), path.join(base, 'file'), base])
  t.equal(path.dirname(made.dir), base)
  t.match(made.fallbackReason, /missing: it does not exist; cannot create a directory in .*file: /)
  const first = await createSocketDir([base])
  t.equal(first.fallbackReason, undefined, 'no fallback, nothing to say')
})

t.test('no candidate works: SOCKET_DIR_FAILED names each cause and the fix', async (t) => {
  const base = scratch(t)
  await t.rejects(createSocketDir([path.join(base, 'missing'), path.join(base, 'y'.repeat(120))]), {
    code: 'SOCKET_DIR_FAILED',
    exitCode: 75,
    message:
      /^mlserve cannot create a directory for the scorers' Unix sockets: cannot create a directory in .*missing: it does not exist; .*is too long for Unix socket paths/,
    suggestions: [/Point TMPDIR at a short \(at most \d+ bytes\), existing, writable directory with free space, e\.g\. TMPDIR=\/tmp\./],
  })
})
