// MlserveError: printed whole (code, exit code, hints), and every code its own exit code.
import t from 'tap'

import {ERROR_CODES, MlserveError, formatError} from '../../src/errors.js'

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
