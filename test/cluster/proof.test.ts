// The cluster proof (npm run test:cluster, after run.sh brought the cluster up): the example's image from
// `mlserve build-docker`, the `mlserve generate-k8s` manifests applied to a real Kubernetes v1.32 and
// KServe, answers byte-identical to `mlserve serve`, spread over replicas, a rolling update without a
// failed request, an HPA scale-out, and every manifest accepted by `kubectl apply --dry-run=server`.
/* eslint-disable no-await-in-loop -- each step polls the cluster one call after another */
/* eslint-disable @typescript-eslint/no-explicit-any -- kubectl -o json output, read field by field */
import {execFile, execFileSync, spawn} from 'node:child_process'
import {appendFileSync, mkdtempSync, readFileSync, rmSync} from 'node:fs'
import http from 'node:http'
import {tmpdir} from 'node:os'
import path from 'node:path'
import {promisify} from 'node:util'

import t, {type Test} from 'tap'

import {docker, ensureBaseImage, startDockerd} from '../helpers/docker.js'
import {MLSERVE_BIN, startMlserve} from '../helpers/servers.js'
import {REPO_ROOT, toolchainEnv} from '../helpers/toolchain.js'

const env = (name: string): string => {
  const value = process.env[name]
  if (!value) throw new Error(`${name} is not set: run this file through test/cluster/run.sh (npm run test:cluster)`)
  return value
}

const KUBECTL = env('KUBECTL')
const CONTAINERD_SOCK = env('CONTAINERD_SOCK')
const STEP_TIMES = process.env.STEP_TIMES
const MODEL = path.join(REPO_ROOT, 'examples/sklearn-iris')
const IMAGE = 'mlserve-iris'
const NAME = 'iris'
const INPUT = readFileSync(path.join(MODEL, 'serving_input_example.json'), 'utf8')
const work = mkdtempSync(path.join(tmpdir(), 'mlserve-cluster-'))
t.teardown(() => rmSync(work, {recursive: true, force: true}))

const execFileAsync = promisify(execFile)
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

/** kubectl, asynchronous: the client loops must keep running while kubectl waits (a blocked event loop fails them). */
async function kubectl(args: readonly string[]): Promise<string> {
  const {stdout} = await execFileAsync(KUBECTL, args, {encoding: 'utf8', timeout: 600_000, maxBuffer: 64 * 1024 * 1024})
  return stdout
}

async function kubectlJson<T = any>(args: readonly string[]): Promise<T> {
  return JSON.parse(await kubectl([...args, '-o', 'json'])) as T
}

/** Writes `mlserve generate-k8s` output for these flags into a fresh directory and returns it. */
async function generate(label: string, args: readonly string[]): Promise<string> {
  const dir = path.join(work, label)
  const name = args.includes('--name') ? [] : ['--name', NAME]
  await execFileAsync(process.execPath, [MLSERVE_BIN, 'generate-k8s', '-m', MODEL, '-o', dir, ...name, ...args])
  return dir
}

/** Runs a step as a subtest and records its duration (printed, and appended to $STEP_TIMES). */
function step(name: string, fn: (t: Test) => Promise<void>) {
  return t.test(name, async (t) => {
    const start = performance.now()
    try {
      await fn(t)
    } finally {
      const seconds = ((performance.now() - start) / 1000).toFixed(1)
      t.comment(`${name}: ${seconds} s`)
      if (STEP_TIMES) appendFileSync(STEP_TIMES, `${name}\t${seconds}\n`)
    }
  })
}

interface Answer {
  readonly status: number
  readonly body: string
  readonly requestId?: string
}

/** POST /invocations; `fresh` uses a new connection (so kube-proxy picks a pod per request). */
function invoke(url: string, options: {agent?: http.Agent; requestId?: string; body?: string} = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const request = http.request(
      `${url}/invocations`,
      {
        method: 'POST',
        agent: options.agent ?? false,
        headers: {'content-type': 'application/json', ...(options.requestId ? {'x-request-id': options.requestId} : {})},
        timeout: 30_000,
      },
      (response) => {
        const chunks: Buffer[] = []
        response.on('data', (chunk: Buffer) => chunks.push(chunk))
        response.on('end', () =>
          resolve({
            status: response.statusCode ?? 0,
            body: Buffer.concat(chunks).toString('utf8'),
            requestId: response.headers['x-request-id'] as string,
          }),
        )
        response.on('error', reject)
      },
    )
    request.on('timeout', () => request.destroy(new Error('timeout')))
    request.on('error', reject)
    request.end(options.body ?? INPUT)
  })
}

async function serviceUrl(name: string, namespace = 'default'): Promise<string> {
  const service = await kubectlJson(['get', 'service', name, '-n', namespace])
  return `http://${service.spec.clusterIP}:${service.spec.ports[0].port}`
}

async function podsOf(selector: string): Promise<Array<{name: string; image: string; ready: boolean}>> {
  return (await kubectlJson<{items: any[]}>(['get', 'pods', '-l', selector])).items
    .filter((pod: any) => !pod.metadata.deletionTimestamp)
    .map((pod: any) => ({
      name: pod.metadata.name,
      image: pod.spec.containers[0].image,
      ready: (pod.status.conditions ?? []).some((c: any) => c.type === 'Ready' && c.status === 'True'),
    }))
}

const SELECTOR = `app.kubernetes.io/name=${NAME}`
let reference: Answer

step('image: mlserve build-docker, imported into the cluster', async (t) => {
  const present = execFileSync('ctr', ['-a', CONTAINERD_SOCK, '-n', 'k8s.io', 'images', 'ls', '-q'], {encoding: 'utf8'})
  if (present.includes(`${IMAGE}:1`)) {
    // a cluster this file already ran against (up by hand): the import is done
    t.comment('image already in the cluster')
    return
  }

  const dockerd = await startDockerd({bridge: 'none', iptables: false})
  t.teardown(() => dockerd.stop())
  const base = ensureBaseImage(dockerd.host)
  const build = spawn(process.execPath, [MLSERVE_BIN, 'build-docker', '-m', MODEL, '-n', `${IMAGE}:1`, '--base-image', base], {
    env: toolchainEnv({DOCKER_HOST: dockerd.host}),
    stdio: ['ignore', 'inherit', 'inherit'],
  })
  const code = await new Promise<number | null>((resolve) => build.on('exit', resolve))
  t.equal(code, 0, 'build-docker exits 0')
  const size = docker(dockerd.host, ['image', 'inspect', `${IMAGE}:1`, '--format', '{{.Size}}']).trim()
  t.comment(`image size: ${(Number(size) / 1e6).toFixed(0)} MB`)
  // docker save | ctr import, streamed
  await new Promise<void>((resolve, reject) => {
    const save = spawn('docker', ['-H', dockerd.host, 'save', `${IMAGE}:1`], {stdio: ['ignore', 'pipe', 'inherit']})
    const load = spawn('ctr', ['-a', CONTAINERD_SOCK, '-n', 'k8s.io', 'images', 'import', '-'], {stdio: ['pipe', 'ignore', 'inherit']})
    save.stdout.pipe(load.stdin)
    load.on('exit', (status) => (status === 0 ? resolve() : reject(new Error(`ctr import exited ${status}`))))
    save.on('error', reject)
  })
  const images = execFileSync('ctr', ['-a', CONTAINERD_SOCK, '-n', 'k8s.io', 'images', 'ls', '-q'], {encoding: 'utf8'})
  t.match(images, new RegExp(`${IMAGE}:1`))
})

step('reference: mlserve serve on the host', async (t) => {
  const server = await startMlserve(['-m', MODEL])
  t.teardown(() => server.stop())
  reference = await invoke(server.url)
  t.equal(reference.status, 200)
  t.match(reference.body, /^\{"predictions": \[/)
})

step('rollout: the generated Deployment and Service answer like mlserve serve', async (t) => {
  const dir = await generate('plain', [
    ...['--image', `${IMAGE}:1`, '--no-autoscale', '--replicas', '1', '--cpu-request', '250m'],
    ...['--memory-request', '768Mi'],
  ])
  await kubectl(['apply', '-f', dir])
  const start = performance.now()
  await kubectl(['rollout', 'status', `deployment/${NAME}`, '--timeout=300s'])
  t.comment(`rollout to 1 ready replica: ${((performance.now() - start) / 1000).toFixed(1)} s`)
  const answer = await invoke(await serviceUrl(NAME))
  t.equal(answer.status, 200)
  t.equal(answer.body, reference.body, 'byte-identical to mlserve serve on the host')
  const logs = await kubectl(['logs', `deployment/${NAME}`])
  const line = logs.split('\n').find((l) => l.includes('"msg":"request"') && l.includes(answer.requestId!))
  t.ok(line, 'the request is in the pod log as a JSON access log line')
})

step('scale to 3 replicas: requests spread across the pods', async (t) => {
  const start = performance.now()
  await kubectl(['scale', `deployment/${NAME}`, '--replicas=3'])
  await kubectl(['rollout', 'status', `deployment/${NAME}`, '--timeout=300s'])
  t.comment(`scale 1 -> 3 ready: ${((performance.now() - start) / 1000).toFixed(1)} s`)
  const url = await serviceUrl(NAME)
  // kube-proxy adds a new endpoint a moment after it is ready: send in rounds (at most 300 requests)
  // until every pod's log shows some
  const ids: string[] = []
  const statuses: number[] = []
  let perPod: Record<string, number> = {}
  while (ids.length < 300) {
    for (let i = 0; i < 30; i++) {
      const id = `spread-${ids.length}`
      statuses.push((await invoke(url, {requestId: id})).status)
      ids.push(id)
    }

    perPod = {}
    for (const pod of await podsOf(SELECTOR)) {
      const logs = await kubectl(['logs', pod.name])
      perPod[pod.name] = ids.filter((id) => logs.includes(`"requestId":"${id}"`)).length
    }

    if (Object.values(perPod).every((count) => count > 0)) break
  }

  t.same(new Set(statuses), new Set([200]), 'every request answered 200')
  t.comment(`requests per pod: ${JSON.stringify(perPod)}`)
  t.equal(Object.keys(perPod).length, 3)
  t.equal(
    Object.values(perPod).reduce((a, b) => a + b, 0),
    ids.length,
    'every request is in exactly one pod log',
  )
  for (const [pod, count] of Object.entries(perPod)) t.ok(count > 0, `${pod} served ${count}`)
})

step('rolling update to a new tag under a client loop: zero failed requests', async (t) => {
  // the new tag: the same image under another name (what a CI pipeline's next build would push)
  execFileSync('ctr', [
    '-a',
    CONTAINERD_SOCK,
    '-n',
    'k8s.io',
    'images',
    'tag',
    '--force',
    `docker.io/library/${IMAGE}:1`,
    `docker.io/library/${IMAGE}:2`,
  ])
  const url = await serviceUrl(NAME)
  const counts = {ok: 0, failed: 0, errors: [] as string[]}
  let running = true
  const loopStart = performance.now()
  // 4 clients, each on its own keep-alive connection pool, as a real caller would
  const clients = Array.from({length: 4}, async () => {
    const agent = new http.Agent({keepAlive: true, maxSockets: 1})
    while (running) {
      try {
        const answer = await invoke(url, {agent})
        if (answer.status === 200 && answer.body === reference.body) counts.ok++
        else {
          counts.failed++
          counts.errors.push(`${answer.status} ${answer.body.slice(0, 100)}`)
        }
      } catch (error) {
        counts.failed++
        counts.errors.push(`${((performance.now() - loopStart) / 1000).toFixed(1)} s: ${String(error)}`)
      }
    }

    agent.destroy()
  })
  await sleep(2000)
  const dir = await generate('update', [
    ...['--image', `${IMAGE}:2`, '--no-autoscale', '--replicas', '3', '--cpu-request', '250m'],
    ...['--memory-request', '768Mi'],
  ])
  const start = performance.now()
  t.comment(`apply at ${((start - loopStart) / 1000).toFixed(1)} s`)
  await kubectl(['apply', '-f', dir])
  await kubectl(['rollout', 'status', `deployment/${NAME}`, '--timeout=600s'])
  const rollout = (performance.now() - start) / 1000
  // old pods drain after the rollout reports done: keep the loop on until they are gone
  const deadline = Date.now() + 120_000
  while ((await podsOf(SELECTOR)).some((pod) => pod.image !== `${IMAGE}:2`) && Date.now() < deadline) await sleep(1000)
  await sleep(3000)
  running = false
  await Promise.all(clients)
  t.comment(`rolling update of 3 replicas: ${rollout.toFixed(1)} s; requests: ${counts.ok} ok, ${counts.failed} failed`)
  if (counts.errors.length > 0) t.comment(`first errors: ${counts.errors.slice(0, 5).join(' | ')}`)
  t.ok(counts.ok > 50, `the loop kept sending (${counts.ok})`)
  t.equal(counts.failed, 0, 'no failed request during the rolling update')
  t.same(
    (await podsOf(SELECTOR)).map((pod) => pod.image),
    [`${IMAGE}:2`, `${IMAGE}:2`, `${IMAGE}:2`],
  )
})

step('HPA: a short bounded load raises the replicas above 1', async (t) => {
  const dir = await generate('hpa', [
    ...['--image', `${IMAGE}:2`, '--replicas', '1', '--min-replicas', '1', '--max-replicas', '3', '--target-cpu', '50'],
    ...['--cpu-request', '100m', '--memory-request', '768Mi'],
  ])
  // a fresh Deployment at 1 replica (an HPA created next to 3 running replicas keeps them for its
  // 5-minute scale-down window)
  await kubectl(['delete', 'deployment', NAME, '--wait=true'])
  await kubectl(['apply', '-f', dir])
  await kubectl(['rollout', 'status', `deployment/${NAME}`, '--timeout=300s'])
  // the HPA needs a metric from metrics-server before it can act
  const metricsDeadline = Date.now() + 120_000
  while (Date.now() < metricsDeadline) {
    const hpa = await kubectlJson(['get', 'hpa', NAME])
    if (hpa.status?.currentMetrics?.[0]?.resource?.current?.averageUtilization !== undefined) break
    await sleep(2000)
  }

  t.equal((await kubectlJson(['get', 'deployment', NAME])).spec.replicas, 1, 'one replica before the load')

  const url = await serviceUrl(NAME)
  let running = true
  let sent = 0
  const load = Array.from({length: 6}, async () => {
    const agent = new http.Agent({keepAlive: true, maxSockets: 1})
    while (running) {
      await invoke(url, {agent}).catch(() => undefined)
      sent++
    }

    agent.destroy()
  })
  const start = performance.now()
  let replicas = 1
  while (performance.now() - start < 150_000) {
    replicas = (await kubectlJson(['get', 'deployment', NAME])).spec.replicas as number
    if (replicas > 1) break
    await sleep(2000)
  }

  const seconds = ((performance.now() - start) / 1000).toFixed(1)
  running = false
  await Promise.all(load)
  const hpa = await kubectlJson(['get', 'hpa', NAME])
  t.comment(
    `HPA: ${replicas} replicas after ${seconds} s of load (${sent} requests); utilisation ${JSON.stringify(hpa.status?.currentMetrics?.[0]?.resource?.current)}`,
  )
  t.ok(replicas > 1, `the HPA scaled out (${replicas} replicas)`)
})

step('KServe: the InferenceService reaches Ready and answers /invocations', async (t) => {
  const name = 'iris-kserve'
  const dir = await generate('kserve', [
    ...['--kserve', '--name', name, '--image', `${IMAGE}:2`, '--no-autoscale', '--replicas', '1'],
    ...['--cpu-request', '250m', '--memory-request', '768Mi'],
  ])
  await kubectl(['apply', '-f', dir])
  const start = performance.now()
  await kubectl(['wait', '--for=condition=Ready', `inferenceservice/${name}`, '--timeout=300s'])
  t.comment(`InferenceService Ready: ${((performance.now() - start) / 1000).toFixed(1)} s`)
  // Ready can come before the predictor Service routes to the pod: ask again (bounded) while it is not there yet
  const url = await serviceUrl(`${name}-predictor`)
  const deadline = Date.now() + 60_000
  let answer = await invoke(url).catch((error: Error) => ({status: 0, body: error.message}))
  for (let tries = 1; answer.status !== 200 && Date.now() < deadline; tries++) {
    t.comment(`try ${tries}: ${answer.status} ${answer.body.slice(0, 120)}`)
    await sleep(1000)
    answer = await invoke(url).catch((error: Error) => ({status: 0, body: error.message}))
  }

  t.equal(answer.status, 200)
  t.equal(answer.body, reference.body, 'byte-identical to mlserve serve on the host')
})

step('kubectl apply --dry-run=server accepts every generated manifest', async (t) => {
  const variants: Record<string, string[]> = {
    defaults: [],
    tuned: [
      ...['--namespace', 'default', '--max-replicas', '9', '--cpu-limit', '2', '--memory-limit', '2Gi', '--service-type', 'NodePort'],
      ...['-w', '2', '--batch', '--no-warmup'],
    ],
    fixed: ['--no-autoscale', '--replicas', '1', '--service-type', 'LoadBalancer', '--drain-delay', '0'],
    kserve: ['--kserve'],
    'kserve-mlserver': ['--kserve', '--enable-mlserver', '--cpu-limit', '2'],
  }
  for (const [label, args] of Object.entries(variants)) {
    const dir = await generate(`dry-${label}`, ['--image', `${IMAGE}:2`, '--name', `dry-${label}`, ...args])
    const out = await kubectl(['apply', '--dry-run=server', '--validate=strict', '-f', dir])
    t.match(out, /\(server dry run\)/, `${label}: ${out.trim().split('\n').join('; ')}`)
  }
})
