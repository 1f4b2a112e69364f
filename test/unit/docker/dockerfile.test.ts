// The Dockerfiles build-docker writes: layer order, no download, non-root, port, health check, entrypoint.
import t from 'tap'

import {PYTHON_MISMATCH_MARKER, renderDockerfile, renderEnvironmentDockerfile, renderModelDockerfile} from '../../../src/docker/dockerfile.js'

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
