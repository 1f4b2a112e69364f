// An image takes only the model's own files: links leaving the model, loops and dangling links are refused
// (the build context follows links), before any environment is built; links inside the model are fine.
import {mkdirSync, mkdtempSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import t from 'tap'

import {checkModelLinks} from '../../../src/docker/model-links.js'
import {downloadArtifacts} from '../../../src/uri/artifacts.js'
import type {RestClient} from '../../../src/uri/rest.js'
import {MLSERVE_BIN} from '../../helpers/servers.js'

/** A temp dir with `secret.txt` and a model directory `model/` (MLmodel, data/weights.bin). */
const setup = (t: {teardown(fn: () => void): void}) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-model-links-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  writeFileSync(path.join(dir, 'secret.txt'), 'top secret')
  const model = path.join(dir, 'model')
  mkdirSync(path.join(model, 'data'), {recursive: true})
  writeFileSync(path.join(model, 'MLmodel'), 'flavors:\n  python_function:\n    loader_module: mlflow.sklearn\n    python_version: 3.11.0\n')
  writeFileSync(path.join(model, 'data', 'weights.bin'), 'w')
  return {dir, model}
}

t.test('links that stay inside the model are fine, also when the model directory is itself a link', async (t) => {
  const {dir, model} = setup(t)
  symlinkSync('weights.bin', path.join(model, 'data', 'same.bin'))
  symlinkSync('data', path.join(model, 'data-link'))
  symlinkSync('../MLmodel', path.join(model, 'data', 'mlmodel-link'))
  t.equal(await checkModelLinks(model), 3)
  symlinkSync(model, path.join(dir, 'model-link'))
  t.equal(await checkModelLinks(path.join(dir, 'model-link')), 3)
})

t.test('a model copied from a file store (runs:/ of ./mlruns) keeps its inside links inside: an image takes them', async (t) => {
  const {dir, model} = setup(t)
  symlinkSync('weights.bin', path.join(model, 'data', 'same.bin'))
  const copy = path.join(dir, 'cache', 'model')
  t.ok(await downloadArtifacts(`file://${model}`, copy, undefined as unknown as RestClient, ''))
  t.equal(readlinkSync(path.join(copy, 'data', 'same.bin')), 'weights.bin', "the link as written, not the store's absolute path")
  t.equal(await checkModelLinks(copy), 1)
})

t.test('a link leaving the model is refused, naming the link, its target and the fix', async (t) => {
  for (const target of ['../../secret.txt', '/etc/hostname', '/', '../..']) {
    const {dir, model} = setup(t)
    symlinkSync(target, path.join(model, 'data', 'x'))
    // eslint-disable-next-line no-await-in-loop
    await t.rejects(
      checkModelLinks(model),
      {
        code: 'DOCKER_MODEL_LINK_REFUSED',
        exitCode: 96,
        message: `The model directory ${model} holds a symbolic link data/x -> ${target}, which leaves the model directory`,
        suggestions: [/^Copy the file into the model in place of the link/],
      },
      target,
    )
    t.ok(dir)
  }
})

t.test('a loop is a clear error, not a raw ELOOP; so is a link to a folder that holds it, and a dangling link', async (t) => {
  const cases: Array<[Array<[string, string]>, RegExp]> = [
    [
      [
        ['a', 'b'],
        ['b', 'a'],
      ],
      /-> [ab], which is a loop of links \(ELOOP\)/,
    ],
    [[['data/up', '..']], /data\/up -> \.\., which leads back to a folder that holds it/],
    [[['data/here', '.']], /data\/here -> \., which leads back to a folder that holds it/],
    [[['gone', 'nothing-here']], /gone -> nothing-here, which names nothing \(ENOENT\)/],
  ]
  for (const [links, message] of cases) {
    const {model} = setup(t)
    for (const [link, target] of links) symlinkSync(target, path.join(model, link))
    // eslint-disable-next-line no-await-in-loop
    await t.rejects(checkModelLinks(model), {code: 'DOCKER_MODEL_LINK_REFUSED', message}, String(message))
  }
})

t.test('generate-dockerfile refuses a link leaving the model before anything is built or written (exit 96)', async (t) => {
  const {dir, model} = setup(t)
  symlinkSync(path.join(dir, 'secret.txt'), path.join(model, 'data', 'creds.txt'))
  const out = path.join(dir, 'out')
  const result = await execa('node', [MLSERVE_BIN, 'generate-dockerfile', '-m', model, '-d', out], {
    reject: false,
    env: {MLSERVE_ENV_ROOT: path.join(dir, 'envs'), MLSERVE_MODEL_ROOT: path.join(dir, 'models')},
  })
  t.equal(result.exitCode, 96, result.stderr)
  t.match(result.stderr, `symbolic link data/creds.txt -> ${path.join(dir, 'secret.txt')}, which leaves the model directory`)
  t.same(readdirSync(out), [], 'nothing written into the context')
})
