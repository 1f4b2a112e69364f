// generate-k8s's manifests pass offline validators: kubernetes-validate --strict (Kubernetes 1.32 schemas)
// for the built-in kinds, KServe's own InferenceService CRD schema (from its Go module) for --kserve.
/* eslint-disable no-await-in-loop -- cases run one after another: each spawns the CLI or a validator */
import {execFileSync} from 'node:child_process'
import {mkdtempSync, readFileSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import {execa} from 'execa'
import t from 'tap'

import {KUBERNETES_SCHEMA_VERSION, VALIDATE_CRD, ensureValidators, kserveCrd} from '../../helpers/k8s.js'
import {MLSERVE_BIN} from '../../helpers/servers.js'

const python = ensureValidators()
const crd = kserveCrd()
const work = mkdtempSync(path.join(tmpdir(), 'mlserve-k8s-validate-'))
t.teardown(() => rmSync(work, {recursive: true, force: true}))

async function generateInto(name: string, args: string[]): Promise<string> {
  const dir = path.join(work, name)
  await execa('node', [MLSERVE_BIN, 'generate-k8s', '-m', 'models:/iris@champion', '--image', 'iris:1', '-o', dir, ...args])
  return dir
}

async function kubernetesValidate(files: string[]) {
  return execa(python, ['-m', 'kubernetes_validate', '-k', KUBERNETES_SCHEMA_VERSION, '--strict', ...files], {reject: false, all: true})
}

async function crdValidate(files: string[]) {
  return execa(python, [VALIDATE_CRD, crd, ...files], {reject: false, all: true})
}

const modelsFile = path.join(work, 'models.yaml')
writeFileSync(modelsFile, '- name: fraud\n  uri: models:/fraud@champion\n- uri: models:/churn-*/Production\n')

const FLAG_SETS: Record<string, string[]> = {
  defaults: [],
  tuned: [
    ...['--namespace', 'ml', '--replicas', '3', '--max-replicas', '9', '--target-cpu', '50', '--cpu-request', '250m', '--cpu-limit', '1500m'],
    ...['--memory-request', '700Mi', '--memory-limit', '1Gi', '--service-type', 'NodePort', '--grace-period', '0', '--drain-delay', '0'],
    ...['-w', '2', '--batch', '--no-warmup'],
  ],
  fixed: ['--no-autoscale', '--replicas', '1', '--service-type', 'LoadBalancer'],
  'front-door': ['--auth-secret', 'iris-keys', '--tls-secret', 'iris-tls', '--static-prefix', '/p', '--metrics-public'],
  models: ['--models', modelsFile],
}

t.test('every built-in manifest passes kubernetes-validate --strict', async (t) => {
  for (const [name, args] of Object.entries(FLAG_SETS)) {
    const dir = await generateInto(name, args)
    const files = [...(name === 'models' ? ['configmap.yaml'] : []), 'deployment.yaml', 'service.yaml', 'hpa.yaml', 'pdb.yaml']
      .map((file) => path.join(dir, file))
      .filter((file) => !(name === 'fixed' && file.endsWith('hpa.yaml')))
    const result = await kubernetesValidate(files)
    t.equal(result.exitCode, 0, `${name}: ${result.all}`)
    t.equal((result.all.match(/ passed for resource /g) ?? []).length, files.length, `${name}: each file checked`)
  }
})

t.test('the validator bites: an unknown field or a wrong type fails', async (t) => {
  const dir = await generateInto('broken', [])
  const deployment = path.join(dir, 'deployment.yaml')
  const typo = path.join(work, 'typo.yaml')
  writeFileSync(typo, readFileSync(deployment, 'utf8').replace('readinessProbe:', 'readynessProbe:'))
  t.not((await kubernetesValidate([typo])).exitCode, 0, 'misspelt field')
  const wrongType = path.join(work, 'wrong-type.yaml')
  writeFileSync(wrongType, readFileSync(deployment, 'utf8').replace('replicas: 2', 'replicas: two'))
  t.not((await kubernetesValidate([wrongType])).exitCode, 0, 'string replicas')
})

t.test('the InferenceService passes KServe v0.15.2 CRD schema (unknown fields rejected)', async (t) => {
  for (const [name, args] of Object.entries({
    'kserve-v1': ['--kserve'],
    'kserve-v2': ['--kserve', '--enable-mlserver', '--namespace', 'ml', '--cpu-limit', '2'],
    'kserve-keys': ['--kserve', '--auth-secret', 'iris-keys', '--static-prefix', '/p'],
    'kserve-models': ['--kserve', '--models', modelsFile],
  })) {
    const dir = await generateInto(name, args)
    const result = await crdValidate([path.join(dir, 'inferenceservice.yaml')])
    t.equal(result.exitCode, 0, `${name}: ${result.all}`)
    t.match(result.all, /1 InferenceService object\(s\) checked, 0 violation/)
  }

  const isvc = readFileSync(path.join(work, 'kserve-v1', 'inferenceservice.yaml'), 'utf8')
  const misplaced = path.join(work, 'misplaced.yaml')
  // protocolVersion belongs to a predictor's model spec, not to the predictor of a custom container
  writeFileSync(misplaced, isvc.replace('    minReplicas:', '    protocolVersion: v1\n    minReplicas:'))
  const result = await crdValidate([misplaced])
  t.equal(result.exitCode, 1)
  t.match(result.all, /spec\.predictor: Additional properties are not allowed \('protocolVersion' was unexpected\)/)
})

t.test('the CRD came from the pinned Go module, not from the repository', async (t) => {
  t.match(crd, /github\.com\/kserve\/kserve@v0\.15\.2\/config\/crd\/full\/serving\.kserve\.io_inferenceservices\.yaml$/)
  t.equal(execFileSync('git', ['ls-files', '--', '*inferenceservices*'], {encoding: 'utf8'}), '')
})
