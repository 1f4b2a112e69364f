// The offline manifest validators: kubernetes-validate in a venv of its own under the test cache, and
// KServe's InferenceService CRD from the github.com/kserve/kserve Go module (fetched, never committed).
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, renameSync, rmSync} from 'node:fs'
import path from 'node:path'

import {REPO_ROOT, cacheRoot} from './toolchain.js'

export const KSERVE_VERSION = 'v0.15.2'
export const KUBERNETES_SCHEMA_VERSION = '1.32.0'
const REQUIREMENTS = path.join(REPO_ROOT, 'test/toolchain/k8s-validate-requirements.txt')
export const VALIDATE_CRD = path.join(REPO_ROOT, 'test/helpers/validate_crd.py')

/** The validators' python (kubernetes_validate, jsonschema, yaml), built once; a half-built venv is never used. */
export function ensureValidators(): string {
  const dir = path.join(cacheRoot(), 'k8s', 'validate-1.37.0')
  const python = path.join(dir, 'bin', 'python')
  if (existsSync(path.join(dir, '.complete'))) return python
  mkdirSync(path.dirname(dir), {recursive: true})
  const partial = `${dir}.${process.pid}.tmp`
  rmSync(partial, {recursive: true, force: true})
  try {
    execFileSync('python3', ['-m', 'venv', partial], {stdio: 'inherit'})
    execFileSync(path.join(partial, 'bin', 'python'), ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', REQUIREMENTS], {
      stdio: 'inherit',
    })
    execFileSync('touch', [path.join(partial, '.complete')])
    // a venv's python finds its site-packages next to itself, so the renamed venv works as built
    if (!existsSync(path.join(dir, '.complete'))) {
      rmSync(dir, {recursive: true, force: true})
      renameSync(partial, dir)
    }
  } finally {
    rmSync(partial, {recursive: true, force: true})
  }

  return python
}

/** KServe's InferenceService CRD from its Go module at the pinned tag (needs `go` and the module proxy). */
export function kserveCrd(): string {
  let out: string
  try {
    out = execFileSync('go', ['mod', 'download', '-json', `github.com/kserve/kserve@${KSERVE_VERSION}`], {
      encoding: 'utf8',
      cwd: cacheRoot(),
      env: {...process.env, GOFLAGS: '-mod=mod'},
    })
  } catch (error) {
    throw new Error(`cannot fetch github.com/kserve/kserve@${KSERVE_VERSION} with \`go mod download\` (is Go installed?): ${String(error)}`)
  }

  const dir = (JSON.parse(out) as {Dir?: string}).Dir
  const crd = dir && path.join(dir, 'config/crd/full/serving.kserve.io_inferenceservices.yaml')
  if (!crd || !existsSync(crd)) throw new Error(`no InferenceService CRD in github.com/kserve/kserve@${KSERVE_VERSION}`)
  return crd
}
