import {readdirSync} from 'node:fs'

import t from 'tap'

import {PYTHON_APP_DIR, pyfuncScorerCommand, scorerEnv, speaksFrames} from '../../../src/scorer/pyfunc.js'
import {parentDeathPrefix} from '../../../src/scorer/process.js'
import {compareVersions, isAtLeast} from '../../../src/util/version.js'

const env = (mlflowVersion: string, servers = {uvicorn: true, gunicorn: true}) => ({
  executable: '/venv/bin/python',
  mlflowVersion,
  ...servers,
})

const input = {modelDir: '/models/my model', socketPath: '/tmp/s/scorer.sock', timeoutSeconds: 42}

t.test('mlflow >= 2.21 serves the FastAPI app with uvicorn on the socket', async (t) => {
  const command = pyfuncScorerCommand({...input, env: env('3.17.2')})
  t.equal(command.file, '/venv/bin/python')
  t.same(command.args, ['-m', 'uvicorn', '--uds', '/tmp/s/scorer.sock', '--no-access-log', 'mlflow.pyfunc.scoring_server.app:app'])
  t.equal(command.server, 'uvicorn')
  t.same(command.env, {
    __pyfunc_model_path__: 'file:///models/my%20model',
    MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: '42',
  })
  t.equal(pyfuncScorerCommand({...input, env: env('2.21.0')}).server, 'uvicorn')
  t.equal(pyfuncScorerCommand({...input, env: env('2.21.0rc0')}).server, 'uvicorn')
})

t.test('the fast path serves mlserve_lean:app from the templates for uvicorn scorers only, frames beside its socket', async (t) => {
  const command = pyfuncScorerCommand({...input, env: env('3.17.2'), fastPath: true})
  t.same(command.args, ['-m', 'uvicorn', '--uds', '/tmp/s/scorer.sock', '--no-access-log', '--app-dir', PYTHON_APP_DIR, 'mlserve_lean:app'])
  t.match(PYTHON_APP_DIR, /templates\/python\/app$/)
  t.same(
    readdirSync(PYTHON_APP_DIR),
    ['mlserve_fastpath.py', 'mlserve_gate.py', 'mlserve_gil.py', 'mlserve_lanes.py', 'mlserve_lean.py', 'mlserve_signatures.py'],
    "only mlserve_ modules on the front of the scorer's sys.path",
  )
  t.equal(command.env.MLSERVE_FAST_PATH, '1', 'the preload loader reads it')
  t.equal(command.env.MLSERVE_FRAME_SOCKET, '/tmp/s/scorer.lean', 'the frame socket: as long as the HTTP one, beside it')
  t.ok(speaksFrames({env: env('3.17.2'), fastPath: true}))
  t.notOk(speaksFrames({env: env('3.17.2'), fastPath: false}), '--no-fast-path: HTTP only')
  t.notOk(speaksFrames({env: env('2.20.4'), fastPath: true}))
  const legacy = pyfuncScorerCommand({...input, env: env('2.20.4'), fastPath: true})
  t.equal(legacy.server, 'gunicorn', 'mlflow < 2.21 keeps gunicorn and its Flask app')
  t.notOk(legacy.args.includes('mlserve_lean:app'))
  t.notOk('MLSERVE_FAST_PATH' in legacy.env)
  t.notOk('MLSERVE_FRAME_SOCKET' in legacy.env)
})

t.test('older mlflow serves its Flask app with gunicorn, with its timeout', async (t) => {
  const command = pyfuncScorerCommand({...input, env: env('2.20.4')})
  t.same(command.args, [
    '-m',
    'gunicorn',
    '--timeout=42',
    '-b',
    'unix:/tmp/s/scorer.sock',
    '-w',
    '1',
    '--',
    'mlflow.pyfunc.scoring_server.wsgi:app',
  ])
  t.equal(command.server, 'gunicorn')
})

t.test('a missing web server is a clear error naming it', async (t) => {
  t.throws(() => pyfuncScorerCommand({...input, env: env('3.1.0', {uvicorn: false, gunicorn: true})}), {
    code: 'SCORER_DEPENDENCY_MISSING',
    message: /serves models with uvicorn, which is not installed in \/venv\/bin\/python/,
  })
  t.throws(() => pyfuncScorerCommand({...input, env: env('1.30.0', {uvicorn: true, gunicorn: false})}), {
    code: 'SCORER_DEPENDENCY_MISSING',
    message: /gunicorn/,
  })
})

t.test('scorer variables are the ones mlflow sets', async (t) => {
  t.same(scorerEnv('/a/b', 60), {__pyfunc_model_path__: 'file:///a/b', MLFLOW_SCORING_SERVER_REQUEST_TIMEOUT: '60'})
})

t.test('the parent-death wrapper is used on Linux when setpriv exists', async (t) => {
  t.same(parentDeathPrefix('', 'linux'), [])
  t.same(parentDeathPrefix('/usr/bin:/bin', 'darwin'), [])
  const prefix = parentDeathPrefix('/nonexistent:/usr/bin:/bin', 'linux')
  t.same(prefix.slice(1), ['--pdeathsig', 'KILL', '--'], 'KILL: a busy uvicorn would wait for its predictions on TERM')
  t.match(prefix[0], /\/setpriv$/)
})

t.test('version comparison', async (t) => {
  t.ok(compareVersions('2.21.0', '2.20.4') > 0)
  t.ok(compareVersions('2.9.0', '2.21.0') < 0)
  t.equal(compareVersions('3.0', '3.0.0'), 0)
  t.ok(isAtLeast('10.0.0', '2.21.0'))
  t.notOk(isAtLeast('2.2.1', '2.21.0'))
})
