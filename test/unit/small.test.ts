// The small pure pieces: error formatting, log lines, predict's argv, the tap closing-line reporter.
import t from 'tap'

import {parseEnvPairs} from '../../src/cli/env-pairs.js'
import {ERROR_CODES, MlserveError, formatError} from '../../src/errors.js'
import {createLogger, formatDuration} from '../../src/log.js'
import {predictArgs} from '../../src/predict.js'
import Reporter from '../reporter.js'

t.test('errors print whole, with code, exit code and hints', async (t) => {
  const error = new MlserveError('MODEL_NOT_FOUND', 'Model path does not exist: /x', {suggestions: ['Pass a directory.']})
  t.equal(error.exitCode, 10)
  t.equal(formatError(error), 'Error: Model path does not exist: /x\n  code: MODEL_NOT_FOUND (exit 10)\n  hint: Pass a directory.\n')
  t.equal(new MlserveError('SCORER_START_FAILED', 'x', {exitCode: 3}).exitCode, 3, "a child's exit code wins")
})

t.test('exit codes are distinct', async (t) => {
  const codes = Object.values(ERROR_CODES)
  t.equal(new Set(codes).size, codes.length)
  t.notOk(codes.includes(0 as never))
  t.notOk(codes.includes(1 as never), '1 is left to Node crashes and child exit codes')
})

t.test('phases log their duration', async (t) => {
  const lines: string[] = []
  let now = 0
  const log = createLogger({write: (chunk: string) => lines.push(chunk)}, {now: () => now})
  const phase = log.phase('load model')
  now = 1534
  t.equal(phase.done('3 workers'), 1534)
  log.warn('careful')
  t.same(lines, ['[mlserve] load model...\n', '[mlserve] load model: 3 workers (1.5 s)\n', '[mlserve] warning: careful\n'])
  t.equal(formatDuration(12.4), '12 ms')
})

t.test('on a terminal, live phases show their elapsed time, then a plain done line', async (t) => {
  const chunks: string[] = []
  let now = 0
  const log = createLogger({write: (chunk: string) => chunks.push(chunk)}, {now: () => now, tty: true})
  const phase = log.phase('installing', {live: true})
  now = 2000
  await new Promise((resolve) => setTimeout(resolve, 1100))
  log.info('meanwhile')
  now = 2500
  phase.done()
  const screen = chunks.join('')
  t.match(screen, '\r\u001B[K[mlserve] installing... 2.0 s', 'the live line')
  t.match(screen, '\r\u001B[K[mlserve] meanwhile\n[mlserve] installing... 2.0 s', 'other lines go above it')
  // eslint-disable-next-line no-control-regex
  t.match(screen, /\r\u001B\[K\[mlserve\] installing \(2\.5 s\)\n$/, 'cleared, then the done line')
  const plain: string[] = []
  const quiet = createLogger({write: (chunk: string) => plain.push(chunk)}, {tty: false})
  quiet.phase('installing', {live: true}).done()
  t.notMatch(plain.join(''), '\r', 'no control characters off a terminal')
})

t.test("predict runs mlflow's own predict entry point", async (t) => {
  t.same(predictArgs('/m/my model', {contentType: 'csv', inputPath: '/in.csv', outputPath: undefined}), [
    '-m',
    'mlflow.pyfunc._mlflow_pyfunc_backend_predict',
    '--model-uri',
    'file:///m/my%20model',
    '--content-type',
    'csv',
    '--input-path',
    '/in.csv',
  ])
  t.same(parseEnvPairs(['A=1', 'B=x=y', 'C=']), {A: '1', B: 'x=y', C: ''})
  t.throws(() => parseEnvPairs(['=1']), {code: 'INVALID_ARGUMENT'})
})

async function report(tap: string): Promise<string> {
  const reporter = new Reporter()
  const chunks: string[] = []
  reporter.on('data', (chunk: Buffer) => chunks.push(chunk.toString()))
  const ended = new Promise((resolve) => reporter.on('end', resolve))
  reporter.end(tap)
  await ended
  return chunks.join('')
}

t.test('the reporter passes TAP through and appends the closing line', async (t) => {
  const out = await report('ok 1 - a\nnot ok 2 - b\n# { total: 5, pass: 3, fail: 1, skip: 1 }\n')
  t.match(out, /^ok 1 - a\nnot ok 2 - b\n/)
  t.match(out, /\n3 passed, 1 failed, 1 skipped\n$/)
  t.match(await report('# { total: 2, pass: 2 }\n'), /\n2 passed, 0 failed\n$/)
  t.match(await report('garbage\n'), /0 passed, 1 failed/, 'no summary counts as a failure')
})
