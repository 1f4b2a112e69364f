// build-docker and generate-dockerfile refuse what would change the image behind the user's back: bad image references.
import {mkdtempSync, rmSync} from 'node:fs'
/* eslint-disable no-await-in-loop -- cases run one after another: each spawns the CLI */
import {tmpdir} from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import t from 'tap'

import {checkImageReference} from '../../../src/docker/reference.js'
import {MLSERVE_BIN} from '../../helpers/servers.js'

const GOOD = [
  'python:3.11-slim',
  'python',
  'library/python:3.11',
  'docker.io/library/python:3.11-slim',
  'localhost:5000/team/model_a:v1.2',
  'registry.example.com/a/b/c',
  'my-model:1',
  'ubuntu@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef',
  'mlflow-pyfunc-servable',
  '[::1]:5000/model:latest',
]
const BAD = [
  'python:3.11-slim\nRUN echo INJECTED',
  'python:3.11-slim RUN echo',
  '$(touch /tmp/x)',
  'python:$(id)',
  'python:3.11`id`',
  'Python:3.11',
  '',
  'python:',
  ':tag',
  'a//b',
  'python:3.11;id',
  `python:${'x'.repeat(129)}`,
  'python:3.11\r',
]

t.test('image references follow the Docker reference grammar', async (t) => {
  for (const good of GOOD) t.doesNotThrow(() => checkImageReference(good, '--base-image'), good)
  for (const bad of BAD) {
    t.throws(
      () => checkImageReference(bad, '--base-image'),
      {code: 'INVALID_ARGUMENT', message: /^--base-image .* is not a valid image reference/},
      JSON.stringify(bad),
    )
  }
})

t.test('a bad --base-image or -n is refused before any work, naming the flag (exit 2)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-docker-inputs-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  // No model and no daemon: a check that came after any work would fail on those instead.
  const env = {DOCKER_HOST: 'tcp://127.0.0.1:1'}
  const runs = [
    ['generate-dockerfile', '-m', path.join(dir, 'missing'), '-d', path.join(dir, 'out'), '--base-image', 'python:3.11-slim\nRUN echo INJECTED'],
    ['build-docker', '-m', path.join(dir, 'missing'), '--base-image', 'python:$(id)'],
    ['build-docker', '-m', path.join(dir, 'missing'), '-n', 'my model:1'],
    ['build-docker', '-m', path.join(dir, 'missing'), '-n', 'm:1\nRUN echo INJECTED'],
  ]
  for (const args of runs) {
    const result = await execa('node', [MLSERVE_BIN, ...args], {reject: false, env})
    t.equal(result.exitCode, 2, `${args[0]} exit code`)
    t.match(result.stderr, /is not a valid image reference/, args.join(' '))
    t.match(result.stderr, args.includes('-n') ? /-n\/--name/ : /--base-image/)
    t.notMatch(result.stderr, /Docker daemon|MODEL_NOT_FOUND/)
  }
})
