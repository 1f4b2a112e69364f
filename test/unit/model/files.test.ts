// Fault injection on what a model directory brings: FIFOs, devices, symlinks out of the model, huge files,
// YAML alias bombs, installer options and includes that leave the model directory.
import {execFileSync} from 'node:child_process'
import {mkdirSync, symlinkSync, writeFileSync} from 'node:fs'
import path from 'node:path'

import t, {type Test} from 'tap'

import {expandRequirements} from '../../../src/env/requirements.js'
import {readEnvSpec} from '../../../src/env/spec.js'
import type {Logger} from '../../../src/log.js'
import {parseMlmodel, readMlmodel} from '../../../src/model/mlmodel.js'
import {genaiWarmupSkip, readWarmup} from '../../../src/model/warmup.js'
import {readBounded} from '../../../src/util/read-bounded.js'

const made = new Map<Test, number>()

/** A fresh model directory with the given files; `fifos` become named pipes nobody writes to, `links` symlinks. */
function model(t: Test, files: Record<string, string>, extra: {fifos?: string[]; links?: Record<string, string>} = {}): string {
  const count = made.get(t) ?? 0
  made.set(t, count + 1)
  const dir = path.join(count === 0 ? t.testdir({}) : t.testdirName, `model-${count}`)
  mkdirSync(dir, {recursive: true})
  for (const [name, text] of Object.entries(files)) writeFileSync(path.join(dir, name), text)
  for (const fifo of extra.fifos ?? []) execFileSync('mkfifo', [path.join(dir, fifo)])
  for (const [name, target] of Object.entries(extra.links ?? {})) symlinkSync(target, path.join(dir, name))
  return dir
}

/** A logger that keeps its lines. */
function captureLog(): Logger & {lines: string[]} {
  const lines: string[] = []
  return {
    lines,
    info: (message) => lines.push(`info ${message}`),
    warn: (message) => lines.push(`warn ${message}`),
    phase: () => ({done: () => 0}),
  }
}

const MLMODEL = 'flavors:\n  python_function:\n    loader_module: mlflow.pyfunc.model\n'
/** An alias bomb: 9 levels of 9 aliases of the level below, 9^9 (387 million) strings once expanded. */
const BOMB = ['a: &a ["x", "x", "x", "x", "x", "x", "x", "x", "x"]']
for (const [index, name] of ['b', 'c', 'd', 'e', 'f', 'g', 'h', 'i'].entries()) {
  const below = String.fromCharCode('a'.charCodeAt(0) + index)
  BOMB.push(`${name}: &${name} [${Array.from({length: 9}, () => `*${below}`).join(', ')}]`)
}

// Each read below must finish at once: a FIFO nobody writes to would block a reader forever.
t.setTimeout(60_000)

t.test('a FIFO or a device is refused before it is read, whatever the name', async (t) => {
  const dir = model(t, {'big.bin': 'x'.repeat(2048)}, {fifos: ['fifo'], links: {zero: '/dev/zero'}})
  await t.rejects(readBounded(path.join(dir, 'fifo'), {maxBytes: 1024, code: 'MLMODEL_INVALID'}), {
    code: 'MLMODEL_INVALID',
    message: /fifo is a FIFO \(named pipe\)/,
  })
  await t.rejects(readBounded(path.join(dir, 'zero'), {maxBytes: 1024, code: 'MLMODEL_INVALID'}), {message: /zero is a device/})
  await t.rejects(readBounded(path.join(dir, 'big.bin'), {maxBytes: 1024, code: 'MLMODEL_INVALID'}), {message: /is too large \(2048 bytes\)/})
  t.equal((await readBounded(path.join(dir, 'big.bin'), {maxBytes: 2048, code: 'MLMODEL_INVALID'})).length, 2048)
  await t.rejects(
    readBounded(path.join(dir, 'missing'), {maxBytes: 1, code: 'MLMODEL_INVALID'}),
    {code: 'ENOENT'},
    'file-system errors as they are',
  )
})

t.test('MLmodel: a FIFO, a device and an alias bomb are MLMODEL_INVALID', async (t) => {
  const fifo = model(t, {}, {fifos: ['MLmodel']})
  await t.rejects(readMlmodel(fifo), {code: 'MLMODEL_INVALID', exitCode: 11, message: /MLmodel is a FIFO/})
  const device = model(t, {}, {links: {MLmodel: '/dev/zero'}})
  await t.rejects(readMlmodel(device), {code: 'MLMODEL_INVALID', message: /MLmodel is a device/})
  t.throws(() => parseMlmodel(`${MLMODEL}${BOMB.join('\n')}\n`, '/m/MLmodel'), {
    code: 'MLMODEL_INVALID',
    message: /^Could not parse \/m\/MLmodel: the document expands to more than \d+ values/,
  })
  t.equal((await readMlmodel(model(t, {MLmodel: MLMODEL}))).pyfunc?.loaderModule, 'mlflow.pyfunc.model', 'a regular MLmodel reads as before')
})

t.test('python_env.yaml and conda.yaml: alias bombs are refused, and messages never print an unbounded value', async (t) => {
  const bombed = model(t, {'python_env.yaml': `python: "3.11"\n${BOMB.join('\n')}\ndependencies: *i\n`})
  await t.rejects(readEnvSpec(bombed, undefined, '3.11'), {
    code: 'ENV_SPEC_INVALID',
    message: /python_env\.yaml: the document expands to more than/,
  })
  const conda = model(t, {'conda.yaml': `${BOMB.join('\n')}\ndependencies: [python=3.11, *i]\n`})
  await t.rejects(readEnvSpec(conda, {conda: 'conda.yaml'}, '3.11'), {code: 'ENV_SPEC_INVALID', message: /conda\.yaml: the document expands/})

  // Under the bound, but still a value that prints as megabytes: the message stays short.
  const wide = model(t, {
    'python_env.yaml': `python: "3.11"\ndependencies:\n- [${Array.from({length: 50_000}, () => '"abcdefghij"').join(', ')}]\n`,
  })
  const error = (await readEnvSpec(wide, undefined, '3.11').catch((error_: unknown) => error_)) as Error
  t.match(error, {code: 'ENV_SPEC_INVALID', message: /^`dependencies` must be a list of strings but has \['abcdefghij', /})
  t.ok(error.message.length < 2200, `the message is bounded (${error.message.length} characters)`)

  const fifo = model(t, {}, {fifos: ['python_env.yaml']})
  await t.rejects(readEnvSpec(fifo, undefined, '3.11'), {code: 'ENV_SPEC_INVALID', message: /python_env\.yaml is a FIFO/})
})

t.test('requirements: installer options are refused, requirement-file directives kept', async (t) => {
  const dir = model(t, {'requirements.txt': 'numpy\n--prefix=/tmp/elsewhere\n'})
  await t.rejects(expandRequirements(['-r requirements.txt'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: /"--prefix=\/tmp\/elsewhere" in .*requirements\.txt is an installer option, not a requirement/,
  })
  for (const option of ['--target=/tmp/x', '--target /tmp/x', '-t/tmp/x', '--user', '--root=/']) {
    // eslint-disable-next-line no-await-in-loop
    await t.rejects(expandRequirements([option], dir), {code: 'ENV_SPEC_INVALID'}, option)
  }

  const kept = [
    '--index-url https://pypi.org/simple',
    '--extra-index-url=https://example.org/simple',
    '-e ./pkg',
    '--pre',
    'numpy --hash=sha256:00',
  ]
  t.same(
    (await expandRequirements(kept, dir)).map((r) => r.line),
    kept,
  )

  const spec = model(t, {'python_env.yaml': 'python: "3.11"\nbuild_dependencies:\n- pip\n- --target=/tmp/planted\ndependencies: [numpy]\n'})
  await t.rejects(readEnvSpec(spec, undefined, '3.11'), {
    code: 'ENV_SPEC_INVALID',
    message: /"--target=\/tmp\/planted" in the build dependencies of python_env\.yaml is an installer option/,
  })
})

t.test('requirements: an include that leaves the model directory is refused, also through a symlink; a FIFO include too', async (t) => {
  const parent = t.testdir({'outside.txt': 'evil\n', model: {'requirements.txt': '-r ../outside.txt\n', 'sub.txt': 'ok\n'}})
  const dir = path.join(parent, 'model')
  await t.rejects(expandRequirements(['-r requirements.txt'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: /"-r \.\.\/outside\.txt" in .*requirements\.txt includes .*outside\.txt, which is outside the model directory/,
  })
  await t.rejects(expandRequirements(['-r ../../../../../../../etc/hostname'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: /outside the model directory/,
  })
  for (const line of ['-r../outside.txt', '-r\t../outside.txt', '--constraint\t../outside.txt', '-c../outside.txt']) {
    // eslint-disable-next-line no-await-in-loop
    await t.rejects(
      expandRequirements([line], dir),
      {code: 'ENV_SPEC_INVALID', message: /mlserve reads includes written as "-(r|c|-constraint) FILE"/},
      JSON.stringify(line),
    )
  }

  symlinkSync('/etc/hostname', path.join(dir, 'linked.txt'))
  await t.rejects(expandRequirements(['-r linked.txt'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: /linked\.txt \(\/etc\/hostname\), which is outside/,
  })
  t.same(
    await expandRequirements(['-r sub.txt', `-r ${path.join(dir, 'sub.txt')}`, '-r nested/../sub.txt'], dir).then((r) => r.map((x) => x.line)),
    ['ok', 'ok', 'ok'],
  )

  execFileSync('mkfifo', [path.join(dir, 'pipe.txt')])
  await t.rejects(expandRequirements(['-r pipe.txt'], dir), {code: 'ENV_SPEC_INVALID', message: /pipe\.txt is a FIFO/})
})

t.test('the warm-up example: only a regular file inside the model, at most the body limit; anything else reported, not read', async (t) => {
  const example = '{"inputs": [[1, 2]]}'
  const withExample = (links: Record<string, string>, files: Record<string, string> = {}, fifos: string[] = []) =>
    model(t, {MLmodel: MLMODEL, ...files}, {links, fifos})
  const mlmodel = (serving?: string) =>
    parseMlmodel(serving ? `${MLMODEL}saved_input_example_info: {serving_input_path: ${serving}}\n` : MLMODEL, 'MLmodel')

  const plain = withExample({}, {'serving_input_example.json': example})
  t.same(await readWarmup(plain, mlmodel(), {maxBytes: 1024}), {
    body: Buffer.from(example),
    contentType: 'application/json',
    source: 'serving_input_example.json',
  })
  const inside = withExample({'serving_input_example.json': 'real.json'}, {'real.json': example})
  t.same((await readWarmup(inside, mlmodel()))?.body, Buffer.from(example), 'a symlink inside the model is fine')

  const cases: Array<[string, string, RegExp]> = [
    [
      withExample({'serving_input_example.json': '/etc/passwd'}),
      'serving_input_example.json',
      /not warming up with serving_input_example\.json: it is outside the model directory \(\/etc\/passwd\)/,
    ],
    [withExample({'serving_input_example.json': '/dev/zero'}), 'serving_input_example.json', /outside the model directory \(\/dev\/zero\)/],
    [
      withExample({}, {}, ['serving_input_example.json']),
      'serving_input_example.json',
      /serving_input_example\.json is a FIFO \(named pipe\): the warm-up reads only a regular file/,
    ],
    [
      withExample({}, {'big.json': 'x'.repeat(2000)}),
      'big.json',
      /big\.json is too large \(2000 bytes\): the warm-up reads only a regular file of at most --max-body-size \(1024 bytes\)/,
    ],
    [withExample({}), '../../../../etc/passwd', /not warming up with \.\.\/\.\.\/\.\.\/\.\.\/etc\/passwd: it is outside the model directory/],
  ]
  for (const [dir, serving, message] of cases) {
    const log = captureLog()
    // eslint-disable-next-line no-await-in-loop
    t.equal(await readWarmup(dir, mlmodel(serving), {maxBytes: 1024, log}), undefined, `${serving} is not posted`)
    t.match(log.lines.join('\n'), message)
    t.match(log.lines.join('\n'), /^warn /, 'reported as a warning')
  }

  const log = captureLog()
  t.equal(await readWarmup(withExample({}), mlmodel(), {log}), undefined)
  t.same(log.lines, ['info no serving_input_example.json in the model: ready as soon as /ping answers'], 'no example: said as before')
})

t.test('a regular MLmodel in a subdirectory layout still reads', async (t) => {
  const dir = t.testdir({})
  mkdirSync(path.join(dir, 'm'))
  writeFileSync(path.join(dir, 'm', 'MLmodel'), MLMODEL)
  t.equal((await readMlmodel(path.join(dir, 'm'))).pyfunc?.loaderModule, 'mlflow.pyfunc.model')
})

t.test('GenAI models are not warmed up: their example would call the LLM', async (t) => {
  const parse = (lines: string) => parseMlmodel(`flavors:\n  python_function:\n    loader_module: ${lines}`, 'MLmodel')
  t.match(genaiWarmupSkip(parse('mlflow.pyfunc.model\nmetadata:\n  task: agent/v1/responses')), /GenAI model \(agent\/v1\/responses\)/)
  t.match(genaiWarmupSkip(parse('mlflow.pyfunc.loaders.chat_model')), /GenAI model \(mlflow\.pyfunc\.loaders\.chat_model\)/)
  t.match(genaiWarmupSkip(parse('mlflow.pyfunc.loaders.chat_agent')), /GenAI/)
  t.equal(genaiWarmupSkip(parse('mlflow.sklearn')), undefined, 'a classic model is warmed up')
  t.equal(genaiWarmupSkip(parse('mlflow.pyfunc.model\nmetadata:\n  task: classification')), undefined)
})
