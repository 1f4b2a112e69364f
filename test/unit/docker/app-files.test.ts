// mlserve's files for the image: the package and its production dependencies only.
import {existsSync} from 'node:fs'
import path from 'node:path'

import t from 'tap'

import {appFiles} from '../../../src/docker/app-files.js'
import {envEntryWanted} from '../../../src/docker/context.js'
import {REPO_ROOT} from '../../helpers/toolchain.js'

t.test("mlserve's files for the image: the package and its production dependencies only", async (t) => {
  const files = appFiles(REPO_ROOT)
  const targets = files.map((file) => file.to)
  for (const entry of ['package.json', 'oclif.manifest.json', 'bin', 'dist', 'templates']) t.ok(targets.includes(entry), entry)
  for (const dependency of ['@oclif/core', 'hono', 'undici', 'execa', 'js-yaml', 'tar']) {
    t.ok(targets.includes(path.join('node_modules', dependency)), dependency)
  }

  for (const devTool of ['tap', 'typescript', 'eslint', 'oclif', 'prettier']) {
    t.notOk(targets.includes(path.join('node_modules', devTool)), `no ${devTool}`)
  }

  t.ok(
    files.every((file) => existsSync(file.from)),
    'every file exists',
  )
  t.ok(
    envEntryWanted('lib') && envEntryWanted('bin') && !envEntryWanted('pyvenv.cfg') && !envEntryWanted('.mlserve-env.json'),
    "the env without its interpreter links and mlserve's cache files",
  )
})
