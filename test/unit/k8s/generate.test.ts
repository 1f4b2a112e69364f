// generate-k8s's manifests: the same options give the same bytes, and every flag lands where Kubernetes reads it.
import {mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
/* eslint-disable no-await-in-loop -- cases run one after another: each spawns the CLI or a validator */
import {tmpdir} from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import {loadAll} from 'js-yaml'
import t from 'tap'

import {MLSERVE_BIN} from '../../helpers/servers.js'

type Obj = Record<string, any> // eslint-disable-line @typescript-eslint/no-explicit-any

async function generate(args: string[]) {
  return execa('node', [MLSERVE_BIN, 'generate-k8s', ...args], {reject: false, stripFinalNewline: false})
}

async function documents(args: string[]): Promise<Obj[]> {
  const result = await generate(args)
  if (result.exitCode !== 0) throw new Error(`generate-k8s failed: ${result.stderr}`)
  return loadAll(result.stdout) as Obj[]
}

const byKind = (docs: Obj[], kind: string): Obj => {
  const doc = docs.find((d) => d.kind === kind)
  if (!doc) throw new Error(`no ${kind}`)
  return doc
}

t.test('the same flags give the same bytes; the defaults are a Deployment, Service, HPA and PDB', async (t) => {
  const args = ['-m', 'models:/iris@champion', '--image', 'iris:1']
  const first = await generate(args)
  const second = await generate(args)
  t.equal(first.exitCode, 0)
  t.equal(first.stdout, second.stdout)
  t.match(first.stdout, /^---\napiVersion: apps\/v1\nkind: Deployment\nmetadata:\n {2}name: iris\n/)
  const docs = loadAll(first.stdout) as Obj[]
  t.same(
    docs.map((d) => `${d.apiVersion} ${d.kind} ${d.metadata.name}`),
    ['apps/v1 Deployment iris', 'v1 Service iris', 'autoscaling/v2 HorizontalPodAutoscaler iris', 'policy/v1 PodDisruptionBudget iris'],
  )
})

t.test('defaults: probes on /readyz and /livez, drain outlasting the grace period, non-root, JSON logs, scrape annotations', async (t) => {
  const docs = await documents(['-m', './models/iris', '--image', 'iris:1'])
  const deployment = byKind(docs, 'Deployment')
  const pod = deployment.spec.template
  const container = pod.spec.containers[0]
  t.equal(deployment.spec.replicas, 2)
  t.same(deployment.spec.strategy.rollingUpdate, {maxSurge: 1, maxUnavailable: 0}, 'a rollout never drops capacity')
  t.same(container.args, ['--log-format', 'json', '--grace-period', '30', '--load-timeout', '600'])
  t.same(container.ports, [{name: 'http', containerPort: 8080, protocol: 'TCP'}])
  t.equal(container.startupProbe.httpGet.path, '/readyz')
  t.equal(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold, 600, 'start-up allows the whole --load-timeout')
  t.equal(container.readinessProbe.httpGet.path, '/readyz')
  t.equal(container.livenessProbe.httpGet.path, '/livez')
  t.same(container.lifecycle, {preStop: {sleep: {seconds: 5}}})
  t.ok(pod.spec.terminationGracePeriodSeconds > 30 + 5, 'SIGKILL only after the preStop pause and the whole drain')
  t.equal(pod.spec.securityContext.runAsNonRoot, true)
  t.equal(pod.spec.automountServiceAccountToken, false, 'no API token in a pod that never calls the API')
  t.equal(container.securityContext.allowPrivilegeEscalation, false)
  t.same(container.resources, {requests: {cpu: '1', memory: '1Gi'}, limits: {memory: '1Gi'}})
  t.same(pod.metadata.annotations, {
    'prometheus.io/scrape': 'true',
    'prometheus.io/port': '8080',
    'prometheus.io/path': '/metrics',
    'mlserve.dev/model-uri': './models/iris',
  })
  t.same(deployment.spec.selector.matchLabels, {'app.kubernetes.io/name': 'iris'})
  const service = byKind(docs, 'Service')
  t.same(service.spec.ports, [{name: 'http', port: 80, targetPort: 'http', protocol: 'TCP'}])
  t.same(service.spec.selector, {'app.kubernetes.io/name': 'iris'})
  const hpa = byKind(docs, 'HorizontalPodAutoscaler')
  t.same([hpa.spec.minReplicas, hpa.spec.maxReplicas, hpa.spec.metrics[0].resource.target.averageUtilization], [2, 5, 70])
  t.equal(byKind(docs, 'PodDisruptionBudget').spec.maxUnavailable, 1)
})

t.test('every tunable value comes from its flag', async (t) => {
  const docs = await documents([
    ...['-m', 'runs:/abc/model', '--image', 'reg.example/iris:2', '--name', 'iris-prod', '--namespace', 'ml'],
    ...['--replicas', '3', '--min-replicas', '2', '--max-replicas', '8', '--target-cpu', '55'],
    ...['--cpu-request', '250m', '--cpu-limit', '2', '--memory-request', '512Mi', '--memory-limit', '2Gi'],
    ...['--max-unavailable', '2', '--service-type', 'NodePort', '--service-port', '8080'],
    ...['--grace-period', '20', '--drain-delay', '3', '--load-timeout', '120', '--run-as-user', '1000'],
    ...['-w', '4', '-t', '30', '--max-queue', '10', '--batch', '--no-access-log'],
  ])
  for (const doc of docs) t.same([doc.metadata.name, doc.metadata.namespace], ['iris-prod', 'ml'], doc.kind)
  const deployment = byKind(docs, 'Deployment')
  const pod = deployment.spec.template.spec
  const container = pod.containers[0]
  t.equal(deployment.spec.replicas, 3)
  t.equal(container.image, 'reg.example/iris:2')
  t.same(container.args, [
    ...['--log-format', 'json', '--grace-period', '20', '--load-timeout', '120'],
    ...['--workers', '4', '--timeout', '30', '--max-queue', '10', '--batch', '--no-access-log'],
  ])
  t.same(container.resources, {requests: {cpu: '250m', memory: '512Mi'}, limits: {cpu: '2', memory: '2Gi'}})
  t.equal(container.startupProbe.periodSeconds * container.startupProbe.failureThreshold, 120)
  t.same(container.lifecycle.preStop.sleep.seconds, 3)
  t.equal(pod.terminationGracePeriodSeconds, 3 + 20 + 15)
  t.equal(pod.securityContext.runAsUser, 1000)
  const hpa = byKind(docs, 'HorizontalPodAutoscaler')
  t.same([hpa.spec.minReplicas, hpa.spec.maxReplicas, hpa.spec.metrics[0].resource.target.averageUtilization], [2, 8, 55])
  t.equal(byKind(docs, 'PodDisruptionBudget').spec.maxUnavailable, 2)
  const service = byKind(docs, 'Service')
  t.equal(service.spec.type, 'NodePort')
  t.equal(service.spec.ports[0].port, 8080)
})

t.test('--no-autoscale: a fixed replica count and no HPA; --drain-delay 0: no preStop', async (t) => {
  const docs = await documents(['-m', 'm', '--image', 'i:1', '--no-autoscale', '--replicas', '7', '--drain-delay', '0'])
  t.same(
    docs.map((d) => d.kind),
    ['Deployment', 'Service', 'PodDisruptionBudget'],
  )
  t.equal(byKind(docs, 'Deployment').spec.replicas, 7)
  t.equal(byKind(docs, 'Deployment').spec.template.spec.containers[0].lifecycle, undefined)
})

t.test('--kserve: one InferenceService in RawDeployment mode with the custom mlserve container', async (t) => {
  const docs = await documents(['-m', 'models:/iris/3', '--image', 'iris:1', '--kserve', '--min-replicas', '1', '--max-replicas', '4'])
  t.equal(docs.length, 1)
  const isvc = docs[0]!
  t.equal(isvc.apiVersion, 'serving.kserve.io/v1beta1')
  t.equal(isvc.kind, 'InferenceService')
  t.equal(isvc.metadata.name, 'iris')
  t.equal(isvc.metadata.annotations['serving.kserve.io/deploymentMode'], 'RawDeployment')
  const predictor = isvc.spec.predictor
  t.same([predictor.minReplicas, predictor.maxReplicas, predictor.scaleMetric, predictor.scaleTarget], [1, 4, 'cpu', 70])
  const container = predictor.containers[0]
  t.equal(container.name, 'kserve-container', 'the name KServe looks for')
  t.same(container.env, [{name: 'PROTOCOL', value: 'v1'}])
  t.equal(container.ports[0].containerPort, 8080)
  t.equal(container.readinessProbe.httpGet.path, '/readyz')
  const v2 = (await documents(['-m', 'models:/iris/3', '--image', 'iris:1', '--kserve', '--enable-mlserver']))[0]!
  t.same(v2.spec.predictor.containers[0].env, [{name: 'PROTOCOL', value: 'v2'}])
  t.ok(v2.spec.predictor.containers[0].args.includes('--enable-mlserver'))
})

t.test('names come from the model URI, made valid for Kubernetes', async (t) => {
  const nameOf = async (uri: string) => (await documents(['-m', uri, '--image', 'i:1']))[0]!.metadata.name as string
  t.equal(await nameOf('models:/Fraud_Detector@prod'), 'fraud-detector')
  t.equal(await nameOf('runs:/0a1b2c/my_model'), 'my-model')
  t.equal(await nameOf('/srv/models/2024-iris/'), 'iris')
})

t.test('-o DIR writes one file per manifest with the same bytes as stdout', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-k8s-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const args = ['-m', 'models:/iris@champion', '--image', 'iris:1']
  const result = await generate([...args, '-o', path.join(dir, 'out')])
  t.equal(result.exitCode, 0)
  const files = ['deployment.yaml', 'service.yaml', 'hpa.yaml', 'pdb.yaml']
  t.same(readdirSync(path.join(dir, 'out')).sort(), [...files].sort())
  const joined = files.map((file) => `---\n${readFileSync(path.join(dir, 'out', file), 'utf8')}`).join('')
  t.equal(joined, (await generate(args)).stdout)
})

t.test('bad values are refused before anything is written, naming the flag', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--name', 'Iris_Model'], /--name "Iris_Model" is not a valid name/],
    [['--min-replicas', '4', '--max-replicas', '2'], /--min-replicas 4 is above --max-replicas 2/],
    [['--replicas', '9'], /--replicas 9 is outside --min-replicas 2 \.\. --max-replicas 5/],
    [['--cpu-request', 'lots'], /--cpu-request "lots" is not a CPU quantity/],
    [['--memory-limit', '2GB'], /--memory-limit "2GB" is not a memory quantity/],
    [['--kserve', '--name', 'a'.repeat(50)], /at most 45 characters/],
    [['--auth-secret', 'Keys!'], /--auth-secret "Keys!" is not a Secret name/],
    [['--tls-secret', 'tls', '--kserve'], /KServe sends plain HTTP to the predictor container/],
    [['--auth-token-file', 'keys.txt'], /names a file on this machine[\s\S]*--auth-secret iris-keys/],
    [['--tls-cert', 'a.pem', '--tls-key', 'a.key'], /files on this machine[\s\S]*kubectl create secret tls[\s\S]*--tls-secret iris-tls/],
    [['--tls-client-ca', 'ca.pem'], /--tls-client-ca is not supported by generate-k8s: the kubelet's probes/],
  ]
  for (const [extra, message] of cases) {
    const result = await generate(['-m', 'm', '--image', 'i:1', ...extra])
    t.equal(result.exitCode, 2, extra.join(' '))
    t.match(result.stderr, message)
    t.match(result.stderr, /code: INVALID_ARGUMENT \(exit 2\)/)
    t.equal(result.stdout, '')
  }
})

t.test('an -o that cannot be written exits MANIFEST_WRITE_FAILED (100)', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-k8s-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const blocker = path.join(dir, 'a-file')
  writeFileSync(blocker, '')
  const result = await generate(['-m', 'm', '--image', 'i:1', '-o', path.join(blocker, 'out')])
  t.equal(result.exitCode, 100)
  t.match(result.stderr, /Cannot write the manifests to .*a-file\/out/)
  t.match(result.stderr, /code: MANIFEST_WRITE_FAILED \(exit 100\)/)
})

t.test("--kube-version: from 1.30 a preStop sleep action; below it an exec of the image's node sleeping; below 1.23 refused", async (t) => {
  const lifecycleFor = async (extra: string[]) => {
    const docs = await documents(['-m', './models/iris', '--image', 'iris:1', '--drain-delay', '7', ...extra])
    return byKind(docs, 'Deployment').spec.template.spec.containers[0].lifecycle
  }

  t.same(await lifecycleFor([]), {preStop: {sleep: {seconds: 7}}}, 'the default is a current cluster')
  t.same(await lifecycleFor(['--kube-version', '1.30']), {preStop: {sleep: {seconds: 7}}})
  t.same(await lifecycleFor(['--kube-version', 'v1.31.4']), {preStop: {sleep: {seconds: 7}}}, 'as kubectl version prints it')
  const exec = {preStop: {exec: {command: ['/opt/mlserve/node/bin/node', '-e', 'setTimeout(() => {}, 7000)']}}}
  t.same(await lifecycleFor(['--kube-version', '1.29']), exec, 'the image has node (and no sleep binary to count on)')
  t.same(await lifecycleFor(['--kube-version', '1.23']), exec)
  const kserve = await documents(['-m', './models/iris', '--image', 'iris:1', '--kserve', '--kube-version', '1.28'])
  t.same(byKind(kserve, 'InferenceService').spec.predictor.containers[0].lifecycle, {
    preStop: {exec: {command: ['/opt/mlserve/node/bin/node', '-e', 'setTimeout(() => {}, 5000)']}},
  })
  for (const bad of ['1.22', 'latest', '2']) {
    const result = await generate(['-m', './models/iris', '--image', 'iris:1', '--kube-version', bad])
    t.equal(result.exitCode, 2, bad)
    t.match(result.stderr, /--kube-version/, bad)
  }
})

t.test('the front door in the pods: API keys from a Secret as MLSERVE_AUTH_TOKENS, TLS from a Secret with HTTPS probes', async (t) => {
  const args = [
    '-m',
    'models:/iris@champion',
    '--image',
    'iris:1',
    '--static-prefix',
    '/p',
    '--metrics-public',
    '--cors-origin',
    'https://a.example',
  ]
  const docs = await documents([...args, '--auth-secret', 'iris-keys', '--tls-secret', 'iris-tls'])
  const pod = byKind(docs, 'Deployment').spec.template
  const container = pod.spec.containers[0]
  t.same(container.args.slice(6), [
    ...['--tls-cert', '/etc/mlserve/tls/tls.crt', '--tls-key', '/etc/mlserve/tls/tls.key'],
    ...['--static-prefix', '/p', '--cors-origin', 'https://a.example', '--metrics-public'],
  ])
  t.same(container.env, [{name: 'MLSERVE_AUTH_TOKENS', valueFrom: {secretKeyRef: {name: 'iris-keys', key: 'tokens'}}}])
  t.notMatch(JSON.stringify(docs), /BEGIN|tokens=/, 'no key or certificate in the manifests')
  t.same(container.volumeMounts, [
    {name: 'tmp', mountPath: '/tmp'},
    {name: 'tls', mountPath: '/etc/mlserve/tls', readOnly: true},
  ])
  t.same(pod.spec.volumes[1], {name: 'tls', secret: {secretName: 'iris-tls', defaultMode: 0o440}})
  for (const probe of ['startupProbe', 'readinessProbe', 'livenessProbe']) t.equal(container[probe].httpGet.scheme, 'HTTPS', probe)
  t.equal(container.readinessProbe.httpGet.path, '/p/readyz')
  t.equal(pod.metadata.annotations['prometheus.io/scheme'], 'https')

  const keysOnly = byKind(await documents([...args, '--auth-secret', 'iris-keys']), 'Deployment').spec.template.spec.containers[0]
  t.equal(keysOnly.readinessProbe.httpGet.scheme, undefined, 'plain HTTP probes without TLS (the probe routes need no key)')
  t.same(keysOnly.volumeMounts, [{name: 'tmp', mountPath: '/tmp'}])

  const isvc = byKind(await documents([...args, '--auth-secret', 'iris-keys', '--kserve']), 'InferenceService')
  t.same(isvc.spec.predictor.containers[0].env, [
    {name: 'PROTOCOL', value: 'v1'},
    {name: 'MLSERVE_AUTH_TOKENS', valueFrom: {secretKeyRef: {name: 'iris-keys', key: 'tokens'}}},
  ])
})

t.test('--models FILE: a ConfigMap with the file, mounted read-only and passed as --models; KServe too; a bad file is exit 2', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-k8s-models-'))
  t.teardown(() => rmSync(dir, {recursive: true, force: true}))
  const file = path.join(dir, 'models.yaml')
  const text =
    '- name: fraud\n  uri: models:/fraud@champion\n  workers: 2\n- uri: models:/churn-*/Production\n- name: extra\n  uri: /opt/models/extra\n'
  writeFileSync(file, text)
  const result = await generate(['-m', 'models:/iris@champion', '--image', 'iris:1', '--models', file])
  t.equal(result.exitCode, 0, result.stderr)
  t.match(result.stderr, /--models: \/opt\/models\/extra is a local path: it must exist inside the image/)
  const docs = loadAll(result.stdout) as Obj[]
  t.same(
    docs.map((d) => `${d.kind} ${d.metadata.name}`),
    ['ConfigMap iris-models', 'Deployment iris', 'Service iris', 'HorizontalPodAutoscaler iris', 'PodDisruptionBudget iris'],
  )
  t.same(byKind(docs, 'ConfigMap').data, {'models.yaml': text}, 'the file, byte for byte')
  const pod = byKind(docs, 'Deployment').spec.template
  const container = pod.spec.containers[0]
  t.match(container.args.join(' '), /--models \/etc\/mlserve\/models\/models\.yaml/)
  t.same(container.volumeMounts.at(-1), {name: 'models', mountPath: '/etc/mlserve/models', readOnly: true})
  t.same(pod.spec.volumes.at(-1), {name: 'models', configMap: {name: 'iris-models'}})
  t.match(pod.metadata.annotations['mlserve.dev/models-sha256'], /^[0-9a-f]{64}$/, 'a changed file rolls the pods')

  const kserve = (loadAll((await generate(['-m', 'm', '--image', 'i:1', '--kserve', '--models', file])).stdout) as Obj[]).map((d) => d.kind)
  t.same(kserve, ['ConfigMap', 'InferenceService'])
  const isvc = byKind(loadAll((await generate(['-m', 'm', '--image', 'i:1', '--kserve', '--models', file])).stdout) as Obj[], 'InferenceService')
  t.same(isvc.spec.predictor.volumes.at(-1), {name: 'models', configMap: {name: 'm-models'}})

  writeFileSync(file, '- uri: ./x\n  colour: red\n')
  const bad = await generate(['-m', 'm', '--image', 'i:1', '--models', file])
  t.equal(bad.exitCode, 2, 'a bad --models file is refused as serve refuses it')
  t.match(bad.stderr, /entry 1: unknown key "colour"/)
  t.equal(bad.stdout, '')
})
