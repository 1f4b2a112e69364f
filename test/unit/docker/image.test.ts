// The pure parts of build-docker: DOCKER_HOST parsing, the Dockerfile, the build stream's folding, the app's files.
import {existsSync} from 'node:fs'
import path from 'node:path'

import t from 'tap'

import {appFiles} from '../../../src/docker/app-files.js'
import {createBuildTrace, traceBuildMessage} from '../../../src/docker/build-log.js'
import {envEntryWanted} from '../../../src/docker/context.js'
import {PYTHON_MISMATCH_MARKER, renderDockerfile, renderEnvironmentDockerfile, renderModelDockerfile} from '../../../src/docker/dockerfile.js'
import {dockerEndpoint} from '../../../src/docker/engine.js'
import {MlserveError} from '../../../src/errors.js'
import {REPO_ROOT} from '../../helpers/toolchain.js'

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

t.test('the Dockerfile: layer order, no download, non-root, port, health check, entrypoint', async (t) => {
  const spec = {
    baseImage: 'python:3.11-slim',
    pythonVersion: '3.11',
    soabi: 'cpython-311-x86_64-linux-gnu',
    serveFlags: ['--enable-mlserver'],
    labels: {'org.mlserve.model.uri': 'models:/iris@prod', 'a.b': 'say "hi"'},
  }
  const text = renderDockerfile(spec)
  const instructions = text
    .split('\n')
    .filter((line) => /^[A-Z]+ /.test(line))
    .map((line) => line.split(' ')[0])
  t.same(instructions, [
    'FROM',
    'RUN',
    'COPY',
    'COPY',
    'RUN',
    'COPY',
    'COPY',
    'ENV',
    'USER',
    'EXPOSE',
    'HEALTHCHECK',
    'STOPSIGNAL',
    'ENTRYPOINT',
    'CMD',
    'COPY',
    'LABEL',
  ])
  const copies = text.split('\n').filter((line) => line.startsWith('COPY '))
  t.same(
    copies,
    [
      'COPY mlserve/env/ /opt/mlserve/env/',
      'COPY mlserve/node /opt/mlserve/node/bin/node',
      'COPY mlserve/app/ /opt/mlserve/app/',
      'COPY mlserve/init.py /opt/mlserve/init.py',
      'COPY model/ /opt/ml/model/',
    ],
    'environment first, the model last',
  )
  t.notMatch(text, /pip install|curl|wget|apt-get|ADD /, 'nothing is downloaded')
  t.match(
    text,
    /command -v python3\.11\)" && "\$py" -c "import sys, sysconfig; sys\.exit\(sysconfig\.get_config_var\('SOABI'\) != 'cpython-311-x86_64-linux-gnu'\)"/,
  )
  t.match(text, `${PYTHON_MISMATCH_MARKER}: the model's environment needs python3.11`)
  t.match(text, /\nUSER 10001:10001\n/)
  t.match(text, /\nEXPOSE 8080\n/)
  t.match(text, /MLFLOW_HOST=0\.0\.0\.0 \\\n {4}MLFLOW_PORT=8080/)
  t.match(
    text,
    /\nENTRYPOINT \["\/opt\/mlserve\/env\/bin\/python","-I","-S","\/opt\/mlserve\/init\.py","\/opt\/mlserve\/node\/bin\/node","\/opt\/mlserve\/app\/bin\/run\.js","serve","-m","\/opt\/ml\/model","--env-manager","local","--enable-mlserver"\]\n/,
  )
  const environment = renderEnvironmentDockerfile(spec, {'org.mlserve.environment': '/env'})
  const model = renderModelDockerfile(spec, 'mlserve-env:abc')
  t.match(
    environment,
    /\nCOPY mlserve\/node \/opt\/mlserve\/node\/bin\/node\nRUN \/opt\/mlserve\/node\/bin\/node -e "process.exit\(0\)" \|\| .*\nLABEL /,
    'build-docker: the environment image',
  )
  t.notMatch(environment, /COPY model\/|ENTRYPOINT/)
  t.match(model, /\nFROM mlserve-env:abc\nCOPY mlserve\/app\/ /, 'and the model image on it')
  t.notMatch(model, /COPY mlserve\/env\/|RUN /)
  t.match(text, /LABEL \\\n {6}"a\.b"="say \\"hi\\"" \\\n {6}"org\.mlserve\.model\.uri"="models:\/iris@prod"\n/, 'labels quoted as JSON strings')
})

t.test('the build stream: steps, cache hits, the image id, and the failing step with its output', async (t) => {
  const trace = createBuildTrace()
  const lines = [
    {stream: 'Step 1/3 : FROM base\n'},
    {stream: ' ---> 1234\n'},
    {stream: 'Step 2/3 : COPY mlserve/env/ /opt/mlserve/env/\n'},
    {stream: ' ---> Using cache\n ---> abcd\n'},
    {stream: 'Step 3/3 : RUN false\n'},
    {stream: ' ---> Running in 99\n'},
    {stream: 'something went wrong\n'},
    {
      error: "The command '/bin/sh -c false' returned a non-zero code: 1",
      errorDetail: {message: "The command '/bin/sh -c false' returned a non-zero code: 1", code: 1},
    },
  ].flatMap((message) => traceBuildMessage(trace, message))
  t.equal(lines[0], 'Step 1/3 : FROM base')
  t.same(trace.cached, ['Step 2/3 : COPY mlserve/env/ /opt/mlserve/env/'])
  t.equal(trace.failedStep, 'Step 3/3 : RUN false')
  t.match(trace.output, ['---> Running in 99', 'something went wrong'])
  t.equal(trace.error, "The command '/bin/sh -c false' returned a non-zero code: 1")

  const ok = createBuildTrace()
  traceBuildMessage(ok, {aux: {ID: 'sha256:feed'}})
  traceBuildMessage(ok, {stream: 'Successfully built feedbeef1234\n'})
  t.equal(ok.imageId, 'sha256:feed', 'the aux id wins over the short one')
})

t.test("mlserve's files for the image: the package and its production dependencies only", async (t) => {
  const files = appFiles(REPO_ROOT)
  const targets = files.map((file) => file.to)
  for (const entry of ['package.json', 'oclif.manifest.json', 'bin', 'dist', 'templates']) t.ok(targets.includes(entry), entry)
  for (const dependency of ['@oclif/core', 'hono', 'undici', 'execa', 'js-yaml', 'tar']) {
    t.ok(targets.includes(path.join('node_modules', dependency)), dependency)
  }

  for (const devTool of ['tap', 'typescript', 'eslint', 'oclif', 'prettier']) {
    t.notOk(targets.includes(path.join('node_modules', devTool)), `no ${devTool}`)
  }

  t.ok(
    files.every((file) => existsSync(file.from)),
    'every file exists',
  )
  t.ok(
    envEntryWanted('lib') && envEntryWanted('bin') && !envEntryWanted('pyvenv.cfg') && !envEntryWanted('.mlserve-env.json'),
    "the env without its interpreter links and mlserve's cache files",
  )
})
