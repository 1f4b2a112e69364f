// The committed oclif.manifest.json must match what `oclif manifest` generates from the current build:
// oclif loads commands from it, so a stale manifest means stale flags and help. `npm run build` rewrites
// the file in the working tree, so the comparison is with the committed version (git HEAD).
import {execFileSync} from 'node:child_process'
import {cpSync, mkdtempSync, readFileSync, rmSync, symlinkSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {REPO_ROOT} from '../../helpers/toolchain.js'

t.test('oclif.manifest.json is up to date with the build', async (t) => {
  // A copy, not links: the manifest records paths relative to the real package directory.
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-manifest-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  cpSync(path.join(REPO_ROOT, 'package.json'), path.join(dir, 'package.json'))
  cpSync(path.join(REPO_ROOT, 'dist'), path.join(dir, 'dist'), {recursive: true})
  symlinkSync(path.join(REPO_ROOT, 'node_modules'), path.join(dir, 'node_modules'))
  // `oclif manifest` deletes oclif.manifest.json in its working directory first: run it in the copy.
  execFileSync(process.execPath, [path.join(REPO_ROOT, 'node_modules/oclif/bin/run.js'), 'manifest', '.'], {
    cwd: dir,
    stdio: 'ignore',
    env: {...process.env, OCLIF_SKIP_UPDATE_CHECK: '1'},
  })
  const generated = JSON.parse(readFileSync(path.join(dir, 'oclif.manifest.json'), 'utf8'))
  const committed = JSON.parse(committedManifest())
  t.same(committed, generated, 'run `npm run build` and commit oclif.manifest.json')
})

function committedManifest(): string {
  try {
    return execFileSync('git', ['show', 'HEAD:oclif.manifest.json'], {cwd: REPO_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore']})
  } catch {
    // Not a git checkout (an unpacked npm package, say): the file on disk is what ships.
    return readFileSync(path.join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')
  }
}
