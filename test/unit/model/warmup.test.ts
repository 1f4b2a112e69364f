// The warm-up example a model brings: only a regular file inside the model, at most the body limit; GenAI
// models are not warmed up.
import t from 'tap'

import {parseMlmodel} from '../../../src/model/mlmodel.js'
import {genaiWarmupSkip, readWarmup} from '../../../src/model/warmup.js'
import {MLMODEL, captureLog, model} from '../../helpers/model-dir.js'

// Each read below must finish at once: a FIFO nobody writes to would block a reader forever.
t.setTimeout(60_000)

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

t.test('GenAI models are not warmed up: their example would call the LLM', async (t) => {
  const parse = (lines: string) => parseMlmodel(`flavors:\n  python_function:\n    loader_module: ${lines}`, 'MLmodel')
  t.match(genaiWarmupSkip(parse('mlflow.pyfunc.model\nmetadata:\n  task: agent/v1/responses')), /GenAI model \(agent\/v1\/responses\)/)
  t.match(genaiWarmupSkip(parse('mlflow.pyfunc.loaders.chat_model')), /GenAI model \(mlflow\.pyfunc\.loaders\.chat_model\)/)
  t.match(genaiWarmupSkip(parse('mlflow.pyfunc.loaders.chat_agent')), /GenAI/)
  t.equal(genaiWarmupSkip(parse('mlflow.sklearn')), undefined, 'a classic model is warmed up')
  t.equal(genaiWarmupSkip(parse('mlflow.pyfunc.model\nmetadata:\n  task: classification')), undefined)
})
