// Model URIs as uri/resolve.ts reads them: schemes, local paths, what a moving reference names and its key.
import {mkdtemp, writeFile} from 'node:fs/promises'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {isMovingUri, localPathOf, lookUpModelTarget, resolveModelUri, targetKeyOf, uriScheme} from '../../../src/uri/resolve.js'

t.test('schemes', async (t) => {
  t.equal(uriScheme('runs:/abc/model'), 'runs')
  t.equal(uriScheme('models:/m@champion'), 'models')
  t.equal(uriScheme('FILE:///tmp/x'), 'file')
  t.equal(uriScheme('./model'), undefined)
  t.equal(uriScheme('/abs/model'), undefined)
  t.equal(uriScheme('C:/models/x'), undefined, 'a drive letter is not a scheme')
})

t.test('local paths and file: URIs become absolute paths', async (t) => {
  t.equal(localPathOf('model', '/work'), '/work/model')
  t.equal(localPathOf('/abs/model', '/work'), '/abs/model')
  t.equal(localPathOf('file:///abs/my%20model', '/work'), '/abs/my model')
  t.equal(localPathOf('file:/abs/model', '/work'), '/abs/model')
  t.equal(localPathOf('file://localhost/abs/model', '/work'), '/abs/model')
  t.equal(localPathOf('file:rel/model', '/work'), '/work/rel/model')
})

t.test('resolveModelUri checks the directory exists', async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'mlserve-uri-'))
  t.same(await resolveModelUri(dir, '/'), {uri: dir, localDir: dir})
  t.same(await resolveModelUri(`file://${dir}`, '/'), {uri: `file://${dir}`, localDir: dir})
  await t.rejects(resolveModelUri(path.join(dir, 'missing'), '/'), {code: 'MODEL_NOT_FOUND', exitCode: 10})
  await writeFile(path.join(dir, 'file.txt'), 'x')
  await t.rejects(resolveModelUri(path.join(dir, 'file.txt'), '/'), {code: 'MODEL_NOT_FOUND', message: /not a directory/})
  await t.rejects(resolveModelUri('', '/'), {code: 'INVALID_MODEL_URI'})
  const error = await resolveModelUri('m-0123abcd', dir).catch((error_: unknown) => error_)
  t.match(error, {code: 'MODEL_NOT_FOUND', suggestions: ["Maybe you meant 'models:/m-0123abcd'?"]})
})

t.test('a registered model not found names the store searched and the near names in it', async (t) => {
  const root = t.testdir({
    models: {
      iris: {'meta.yaml': 'name: iris\n'},
      'iris-classifier': {'meta.yaml': 'name: iris-classifier\n'},
      wine: {'meta.yaml': 'name: wine\n'},
    },
  })
  const error = await resolveModelUri('models:/Iris@champion', {cwd: root, env: {MLFLOW_TRACKING_URI: `file://${root}`}}).catch(
    (error_: unknown) => error_,
  )
  t.match(error, {
    code: 'REGISTERED_MODEL_NOT_FOUND',
    message: `Registered Model with name=Iris not found in the model registry at file://${root}`,
  })
  const {suggestions} = error as {suggestions: string[]}
  t.match(suggestions.join('\n'), /Registered models with a similar name: iris, iris-classifier/)
  t.notMatch(suggestions.join('\n'), /wine/, 'only near names')
})

t.test('nearNames: close by edit distance or containing each other, case-insensitive, closest first', async (t) => {
  const {nearNames} = await import('../../../src/util/near.js')
  t.same(nearNames('serv', ['serve', 'smoke', 'predict', 'prepare-env']), ['serve'])
  t.same(nearNames('prdict', ['serve', 'smoke', 'predict']), ['predict'])
  t.same(nearNames('xyz', ['serve', 'smoke']), [])
})

t.test('moving references, fixed ones, and the key of what was resolved', async (t) => {
  for (const uri of ['models:/fraud@champion', 'models:/fraud/Production', 'models:/fraud/latest']) t.ok(isMovingUri(uri), uri)
  for (const uri of ['models:/fraud/7', 'runs:/abc/model', './model', 'models:/m-0123abcd', 's3://bucket/model']) t.notOk(isMovingUri(uri), uri)

  t.equal(targetKeyOf({uri: 'models:/fraud@champion', localDir: '/cache/x', registered: {name: 'fraud', version: '7'}}), 'models:/fraud/7')
  t.equal(targetKeyOf({uri: './model', localDir: '/srv/model'}), '/srv/model', 'a directory: its path')
  t.equal(targetKeyOf({uri: 'runs:/abc/model', localDir: '/cache/y', runId: 'abc'}), 'runs:/abc/model')

  // Fixed references and directories are named without asking any server.
  t.same(await lookUpModelTarget('./model', {cwd: '/srv'}), {key: '/srv/model', fixedUri: './model', moving: false, local: true})
  t.same(await lookUpModelTarget('models:/fraud/7', {cwd: '/srv', env: {}}), {
    key: 'models:/fraud/7',
    fixedUri: 'models:/fraud/7',
    moving: false,
    local: false,
    registered: {name: 'fraud', version: '7'},
  })
})
