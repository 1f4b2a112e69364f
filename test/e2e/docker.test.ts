// Images of a model: build-docker and generate-dockerfile against a real, private dockerd with a local
// Python base image (no registry), then the image served with `docker run` and compared with `mlserve serve`.
import {execFile} from 'node:child_process'
import {mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import t, {type Test} from 'tap'

import {docker, dockerAsync, dockerLogs, ensureBaseImage, startDockerd, type Dockerd} from '../helpers/docker.js'
import {freePort, runMlserve, startMlserve, type Server} from '../helpers/servers.js'
import {REPO_ROOT, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

const IRIS = path.join(REPO_ROOT, 'examples/sklearn-iris')
const EXAMPLE = readFileSync(path.join(IRIS, 'serving_input_example.json'), 'utf8')
const SLOW_SECONDS = 4

// Two lanes: build-docker and the second model on its environment (one after the other), next to
// generate-dockerfile and the base-image errors. Everything a test waits on is asynchronous, so that the
// other lane goes on meanwhile.
t.jobs = 2

const work = mkdtempSync(path.join(tmpdir(), 'mlserve-docker-'))
t.teardown(() => rmSync(work, {recursive: true, force: true}))

t.test('no Docker daemon: a clear error and its exit code, before any work', async (t) => {
  const result = await runMlserve(['build-docker', '-m', IRIS, '-n', 'x:1'], {
    env: toolchainEnv({DOCKER_HOST: `unix://${work}/no-such-docker.sock`}),
  })
  t.equal(result.code, 90, result.stderr)
  t.match(result.stderr, `Error: No Docker daemon answers at unix://${work}/no-such-docker.sock (ENOENT).`)
  t.match(result.stderr, /code: DOCKER_UNREACHABLE \(exit 90\)\n {2}hint: Start Docker/)
  t.notMatch(result.stderr, /prepare environment/, 'fails before building anything')
})

let dockerd: Dockerd
let base: string
t.before(async () => {
  dockerd = await startDockerd()
  base = ensureBaseImage(dockerd.host)
})
t.teardown(() => dockerd?.stop())

const envWithDocker = () => toolchainEnv({DOCKER_HOST: dockerd.host})
const layersOf = (image: string): string[] =>
  JSON.parse(docker(dockerd.host, ['image', 'inspect', '-f', '{{json .RootFS.Layers}}', image])) as string[]

interface Container {
  readonly id: string
  readonly url: string
}

/** `docker run -d -p 127.0.0.1:PORT:8080 image args`, removed at teardown; resolves once /readyz is 200. */
async function runContainer(t: Test, image: string, args: readonly string[] = []): Promise<Container> {
  const port = await freePort()
  const id = docker(dockerd.host, ['run', '-d', '-p', `127.0.0.1:${port}:8080`, image, ...args]).trim()
  t.teardown(() => {
    docker(dockerd.host, ['rm', '-f', id])
  })
  const url = `http://127.0.0.1:${port}`
  const deadline = Date.now() + 180_000
  for (;;) {
    // A bounded attempt: while the container starts, docker-proxy accepts connections it never answers, and
    // undici's socket then keeps nothing alive: a timer of our own (AbortSignal.timeout's is unref'd) does.
    const attempt = new AbortController()
    const timer = setTimeout(() => attempt.abort(), 2000)
    try {
      // eslint-disable-next-line no-await-in-loop
      const res = await fetch(`${url}/readyz`, {signal: attempt.signal})
      // eslint-disable-next-line no-await-in-loop
      await res.arrayBuffer()
      if (res.status === 200) return {id, url}
    } catch {
    } finally {
      clearTimeout(timer)
    }

    if (docker(dockerd.host, ['inspect', '-f', '{{.State.Running}}', id]).trim() !== 'true' || Date.now() > deadline) {
      throw new Error(`the container did not get ready:\n${dockerLogs(dockerd.host, id).stderr}`)
    }

    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 200))
  }
}

/** Resolves once the server's scorer is handling a request (its in-flight gauge on /metrics). */
async function scorerBusy(url: string): Promise<void> {
  const series = 'mlserve_scorer_requests_in_flight '
  const deadline = Date.now() + 60_000
  for (;;) {
    // eslint-disable-next-line no-await-in-loop
    const metrics = await (await fetch(`${url}/metrics`)).text()
    const line = metrics.split('\n').find((l) => l.startsWith(series))
    if (line !== undefined && Number(line.slice(series.length)) >= 1) return
    if (Date.now() > deadline) throw new Error(`the request never reached the scorer; /metrics:\n${metrics}`)
    // eslint-disable-next-line no-await-in-loop
    await new Promise((resolve) => setTimeout(resolve, 50))
  }
}

async function answer(url: string, init: {method?: string; path: string; body?: string; contentType?: string}) {
  const res = await fetch(url + init.path, {
    method: init.method ?? 'GET',
    headers: init.contentType ? {'content-type': init.contentType} : {},
    body: init.body,
  })
  return {status: res.status, contentType: res.headers.get('content-type'), body: await res.text()}
}

t.test('build-docker, then another model on the image it built', async (t) => {
  t.test('build-docker: the bundled example, served in a container as mlserve serves it on the host', async (t) => {
    // The host's server (its own virtualenv) starts while the image is built and run.
    const hostStarting = startMlserve(['-m', IRIS, '--env-manager', 'virtualenv'], {env: toolchainEnv()})
    hostStarting.catch(() => undefined)
    t.teardown(async () => {
      const started = await hostStarting.catch(() => undefined)
      await started?.stop('SIGTERM')
    })
    const built = await runMlserve(['build-docker', '-m', IRIS, '-n', 'mlserve-test/iris:1', '--base-image', base], {env: envWithDocker()})
    t.equal(built.code, 0, built.stderr)
    t.match(built.stdout, /^mlserve-test\/iris:1 sha256:[0-9a-f]{64}\n$/)
    t.match(built.stderr, /\[build\] Step \d+\/\d+ : COPY mlserve\/env\/ \/opt\/mlserve\/env\//, 'the build log is streamed')
    t.notMatch(built.stderr, /pip install|Downloading/, 'nothing is downloaded in the build')

    const config = JSON.parse(docker(dockerd.host, ['image', 'inspect', '-f', '{{json .Config}}', 'mlserve-test/iris:1'])) as {
      User: string
      ExposedPorts: Record<string, unknown>
      Healthcheck: {Test: string[]}
      Labels: Record<string, string>
      Entrypoint: string[]
    }
    t.equal(config.User, '10001:10001', 'a non-root user')
    t.same(Object.keys(config.ExposedPorts), ['8080/tcp'])
    t.match(
      config.Healthcheck.Test.join(' '),
      /^CMD \/opt\/mlserve\/node\/bin\/node -e fetch\('http:\/\/127\.0\.0\.1:'.*\/readyz'\)/,
      'health check with Node, no curl',
    )
    t.match(config.Labels, {
      'org.mlserve.model.uri': 'sklearn-iris',
      'org.mlserve.model.uuid': '843277d1a25b4c22a0caabb79752768c',
      'org.mlserve.mlflow.version': '3.17.2',
    })
    t.match(config.Entrypoint.join(' '), / serve -m \/opt\/ml\/model --env-manager local$/)

    const container = await runContainer(t, 'mlserve-test/iris:1')
    const top = docker(dockerd.host, ['top', container.id, '-o', 'pid,uid,args'])
    t.notMatch(top, /^\s*\d+\s+0\s/m, `no process of the container runs as root:\n${top}`)
    t.match(top, /\s10001\s+\/opt\/mlserve\/env\/bin\/python -I -S \/opt\/mlserve\/init\.py /, 'the init runs as the image user')

    const host: Server = await hostStarting
    const cases = [
      {path: '/ping'},
      {path: '/readyz'},
      {path: '/version'},
      {method: 'POST', path: '/invocations', body: EXAMPLE, contentType: 'application/json'},
      {
        method: 'POST',
        path: '/invocations',
        body: '{"dataframe_split": {"columns": ["sepal_length"], "data": [[1.0]]}}',
        contentType: 'application/json',
      },
      {method: 'POST', path: '/invocations', body: 'not json', contentType: 'application/json'},
    ]
    for (const c of cases) {
      // eslint-disable-next-line no-await-in-loop
      const [inImage, onHost] = await Promise.all([answer(container.url, c), answer(host.url, c)])
      if (c.path === '/readyz') {
        // /readyz names a local model by its directory's name, model in the image (/opt/ml/model): the rest must be the same.
        t.match(inImage.body, '"uri":"model"', '/readyz in the image names the baked-in model')
        t.match(onHost.body, '"uri":"sklearn-iris"', 'no host path on the public port')
        inImage.body = inImage.body.replace('"uri":"model"', '"uri":"sklearn-iris"')
      }
      t.same(inImage, onHost, `${c.method ?? 'GET'} ${c.path} ${c.body ?? ''}: the same answer as mlserve serve on the host`)
    }

    t.equal((await answer(container.url, cases[3]!)).body, '{"predictions": [0, 1, 2]}')
    const smoke = await runMlserve(['smoke', '--url', container.url, '-m', IRIS], {env: toolchainEnv()})
    t.equal(smoke.code, 0, `mlserve smoke --url against the container:\n${smoke.stdout}${smoke.stderr}`)
  })

  t.test('a new model on the same environment: every layer but the model is reused; docker stop drains', async (t) => {
    const slow = path.join(work, 'slow-iris')
    await promisify(execFile)(toolchainPython(), [path.join(REPO_ROOT, 'test/fixtures/slow_iris.py'), IRIS, slow, String(SLOW_SECONDS)], {
      env: toolchainEnv(),
    })
    const built = await runMlserve(['build-docker', '-m', slow, '-n', 'mlserve-test/iris:slow', '--base-image', base], {env: envWithDocker()})
    t.equal(built.code, 0, built.stderr)
    t.match(built.stderr, /environment image mlserve-env:[0-9a-f]+ is in the daemon already: only mlserve and the model are sent/)
    t.notMatch(built.stderr, /COPY mlserve\/env\//, 'the environment is neither sent nor copied again')
    const first = layersOf('mlserve-test/iris:1')
    const second = layersOf('mlserve-test/iris:slow')
    t.equal(second.length, first.length)
    t.same(second.slice(0, -1), first.slice(0, -1), 'base, environment, Node and mlserve layers are the same layers')
    t.not(second.at(-1), first.at(-1), 'only the model layer differs')

    // Any serve flag after the image name: JSON logs.
    const container = await runContainer(t, 'mlserve-test/iris:slow', ['--log-format', 'json', '--grace-period', '30'])
    const slowBody = JSON.stringify({
      dataframe_split: {columns: ['sepal_length', 'sepal_width', 'petal_length', 'petal_width'], data: [[100, 1, 1, 1]]},
    })
    const inFlight = answer(container.url, {method: 'POST', path: '/invocations', body: slowBody, contentType: 'application/json'})
    // docker stop once the request is at the scorer (not after a fixed pause: the other lane may be building).
    await scorerBusy(container.url)
    const stopping = dockerAsync(dockerd.host, ['stop', '-t', '60', container.id])
    const response = await inFlight
    t.same(response, {status: 200, contentType: 'application/json', body: '{"predictions": [0]}'}, 'the request in flight is answered')
    await stopping
    t.equal(docker(dockerd.host, ['inspect', '-f', '{{.State.ExitCode}}', container.id]).trim(), '0', 'the container exits 0')
    const logs = dockerLogs(dockerd.host, container.id)
    const lines = logs.stderr.split('\n').filter(Boolean)
    t.ok(lines.length > 5, 'log lines')
    t.ok(
      lines.every((line) => line.startsWith('{"time":')),
      `--log-format json at docker run: every line of mlserve's log is JSON:\n${logs.stderr}`,
    )
    t.ok(
      lines.some((line) => /received SIGTERM/.test(line)),
      'mlserve (behind the init) got the SIGTERM',
    )
  })
})

t.test('generate-dockerfile: the context builds with the plain docker CLI and no network', async (t) => {
  const dir = path.join(work, 'context')
  const generated = await runMlserve(['generate-dockerfile', '-m', IRIS, '-d', dir, '--base-image', base], {env: toolchainEnv()})
  t.equal(generated.code, 0, generated.stderr)
  t.equal(generated.stdout, `${dir}\n`)
  const dockerfile = readFileSync(path.join(dir, 'Dockerfile'), 'utf8')
  t.match(dockerfile, `FROM ${base}\n`)
  await promisify(execFile)('docker', ['-H', dockerd.host, 'build', '--network', 'none', '-t', 'mlserve-test/iris:generated', dir], {
    env: {...process.env, DOCKER_BUILDKIT: '0'},
    maxBuffer: 64 * 1024 * 1024,
  })
  const container = await runContainer(t, 'mlserve-test/iris:generated')
  const prediction = await answer(container.url, {method: 'POST', path: '/invocations', body: EXAMPLE, contentType: 'application/json'})
  t.same(prediction, {status: 200, contentType: 'application/json', body: '{"predictions": [0, 1, 2]}'}, 'the image serves the model')

  const again = await runMlserve(['generate-dockerfile', '-m', IRIS, '-d', dir, '--base-image', base], {env: toolchainEnv()})
  t.equal(again.code, 94, 'a non-empty output directory is refused')
  t.match(again.stderr, /is not empty/)
})

t.test('a base image that is not in the daemon: a clear error, nothing pulled', async (t) => {
  const result = await runMlserve(['build-docker', '-m', IRIS, '-n', 'x:1', '--base-image', 'local/absent:1'], {env: envWithDocker()})
  t.equal(result.code, 91, result.stderr)
  t.match(result.stderr, /The base image local\/absent:1 is not in the Docker daemon .*never pulls/)
  t.match(result.stderr, /hint: Pull it where a registry is reachable/)
})

t.test("a base image without the model's Python: a clear error before the build, with what the image has", async (t) => {
  const dir = path.join(work, 'no-python-base')
  mkdirSync(dir)
  writeFileSync(
    path.join(dir, 'Dockerfile'),
    `FROM ${base}\nRUN mv /usr/bin/python3.11 /usr/bin/python3.11-renamed && ln -sf python3.11-renamed /usr/bin/python3\n`,
  )
  await dockerAsync(dockerd.host, ['build', '--network', 'none', '-q', '-t', 'mlserve-test/no-python:1', dir])
  const result = await runMlserve(['build-docker', '-m', IRIS, '-n', 'x:1', '--base-image', 'mlserve-test/no-python:1'], {env: envWithDocker()})
  t.equal(result.code, 93, result.stderr)
  t.match(
    result.stderr,
    /\nError: The base image does not fit: the model's environment needs python3\.11 \(cpython-311-x86_64-linux-gnu\); mlserve-test\/no-python:1 has: no python3\.11\n/,
  )
  t.notMatch(result.stderr, /\[build\] Step/, 'checked before the build context is sent')
  t.match(result.stderr, /code: DOCKER_BASE_PYTHON_MISMATCH \(exit 93\)/)
})
