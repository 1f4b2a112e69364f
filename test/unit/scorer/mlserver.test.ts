// The MLServer backend: what one slot's `mlserver start` gets (argv, MLSERVER_* variables, ports), without spawning.
import path from 'node:path'

import t from 'tap'

import type {SlotInfo} from '../../../src/scorer/backend.js'
import {MLSERVER_PACKAGES, mlserverBackend} from '../../../src/scorer/mlserver.js'

const input = {
  env: {executable: '/envs/abc/bin/python'},
  modelDir: '/models/my model',
  workers: 2,
  timeoutSeconds: 60,
  baseEnv: {PATH: '/usr/bin'},
}

/** A slot whose freePort hands out the given ports in turn. */
function slot(index: number, ports: number[]): SlotInfo {
  return {index, start: 1, socketPath: `/tmp/s/s${index}-1.sock`, freePort: async () => ports.shift()!}
}

t.test("one slot: `mlserver start <dir>` with mlflow's variables, its own HTTP and gRPC ports, no metrics port", async (t) => {
  const backend = mlserverBackend(input)
  t.equal(backend.kind, 'mlserver')
  t.equal(backend.server, 'mlserver')
  t.equal(backend.readyPath, '/v2/models/mlflow-model/ready', "the model's own readiness, not /v2/health/ready")

  const {command, endpoint} = await backend.launch(slot(0, [41001, 41002]))
  t.same(endpoint, {kind: 'tcp', port: 41001})
  t.equal(command.file, '/envs/abc/bin/python')
  t.same(command.args.slice(0, 1), ['-c'])
  t.match(command.args[1], /from mlserver\.cli import main/)
  t.same(command.args.slice(2), ['start', '/models/my model'])
  t.equal(command.server, 'mlserver')
  t.same(command.env, {
    MLSERVER_HOST: '127.0.0.1',
    MLSERVER_HTTP_PORT: '41001',
    MLSERVER_GRPC_PORT: '41002',
    MLSERVER_METRICS_ENDPOINT: '',
    MLSERVER_PARALLEL_WORKERS: '0',
    MLSERVER_MODEL_NAME: 'mlflow-model',
    MLSERVER_MODEL_IMPLEMENTATION: 'mlserver_mlflow.MLflowRuntime',
    MLSERVER_MODEL_URI: '/models/my model',
  })
  t.notOk('MLSERVER_MODEL_VERSION' in command.env, 'the version is only ever inherited')
})

t.test('slots never share a port; a repeated free port is not used for both HTTP and gRPC', async (t) => {
  const backend = mlserverBackend(input)
  const a = await backend.launch(slot(0, [42001, 42002]))
  const b = await backend.launch(slot(1, [42003, 42003, 42004]))
  t.same(b.endpoint, {kind: 'tcp', port: 42003})
  t.equal(b.command.env.MLSERVER_GRPC_PORT, '42004')
  const ports = [a, b].flatMap(({command}) => [command.env.MLSERVER_HTTP_PORT, command.env.MLSERVER_GRPC_PORT])
  t.equal(new Set(ports).size, 4)
})

t.test('MLSERVER_MODEL_NAME from the environment names the model and its ready path', async (t) => {
  const backend = mlserverBackend({...input, baseEnv: {MLSERVER_MODEL_NAME: 'iris v2', MLSERVER_MODEL_VERSION: '3'}})
  t.equal(backend.readyPath, '/v2/models/iris%20v2/ready')
  const {command} = await backend.launch(slot(0, [43001, 43002]))
  t.equal(command.env.MLSERVER_MODEL_NAME, 'iris v2')
  t.notOk('MLSERVER_MODEL_VERSION' in command.env, 'inherited from the base environment, not set again')
  t.equal(mlserverBackend({...input, baseEnv: {MLSERVER_MODEL_NAME: ''}}).readyPath, '/v2/models/mlflow-model/ready', 'empty means unset')
})

t.test('a relative model dir becomes absolute (the scorer runs in another working directory)', async (t) => {
  const {command} = await mlserverBackend({...input, modelDir: 'examples/sklearn-iris'}).launch(slot(0, [44001, 44002]))
  t.equal(command.args.at(-1), path.resolve('examples/sklearn-iris'))
  t.equal(command.env.MLSERVER_MODEL_URI, path.resolve('examples/sklearn-iris'))
})

t.test("the packages installed for MLServer: mlflow's ranges, uvloop below 0.22", async (t) => {
  t.same(MLSERVER_PACKAGES, ['mlserver>=1.2.0,!=1.3.1,<2.0.0', 'mlserver-mlflow>=1.2.0,!=1.3.1,<2.0.0', 'uvloop<0.22'])
})
