// DOCKER_HOST as build-docker reads it: unix and tcp addresses, the default socket, a clear error otherwise.
import t from 'tap'

import {dockerEndpoint} from '../../../src/docker/engine.js'
import {MlserveError} from '../../../src/errors.js'

t.test('DOCKER_HOST: unix and tcp addresses, the default socket, and a clear error otherwise', async (t) => {
  t.same(dockerEndpoint({}), {origin: 'http://localhost', socketPath: '/var/run/docker.sock', display: 'unix:///var/run/docker.sock'})
  t.same(dockerEndpoint({DOCKER_HOST: 'unix:///tmp/d.sock'}), {
    origin: 'http://localhost',
    socketPath: '/tmp/d.sock',
    display: 'unix:///tmp/d.sock',
  })
  t.same(dockerEndpoint({DOCKER_HOST: 'tcp://10.0.0.2:2375'}), {origin: 'http://10.0.0.2:2375', display: 'tcp://10.0.0.2:2375'})
  t.throws(() => dockerEndpoint({DOCKER_HOST: 'ssh://me@host'}), {code: 'INVALID_ARGUMENT'})
  t.throws(() => dockerEndpoint({DOCKER_HOST: 'tcp://h:2376', DOCKER_TLS_VERIFY: '1'}), {code: 'DOCKER_UNREACHABLE'})
  t.ok(new MlserveError('DOCKER_UNREACHABLE', 'x').exitCode === 90)
})
