// The real mlflow client as a fallback: `python -m mlflow artifacts download` for sqlite / cloud / plugin
// stores, and registry lookups (alias, stage, latest) through MlflowClient, in any Python that has mlflow.
import {mkdtemp, readdir, rename, rm, stat} from 'node:fs/promises'
import path from 'node:path'

import type {EnvVars} from '../config.js'
import {MlserveError, type ErrorCode} from '../errors.js'
import {run} from '../util/exec.js'
import {redactText, type Tracking} from './tracking.js'

export interface PythonClient {
  readonly python: string
  readonly env: EnvVars
  readonly tracking: Tracking
  readonly signal?: AbortSignal
}

/** The interpreter that runs the mlflow client: the --python one when given, else MLSERVE_PYTHON, else python3. */
export const clientPython = (env: EnvVars, python?: string): string => python?.trim() || env.MLSERVE_PYTHON?.trim() || 'python3'

/** Known mlflow messages → mlserve codes, so delegated failures keep distinct exit codes. */
const KNOWN_FAILURES: ReadonlyArray<readonly [RegExp, ErrorCode]> = [
  [/No module named '?mlflow'?/, 'MLFLOW_CLIENT_NOT_FOUND'],
  [/Not a proper (runs|models):\/ URI/, 'INVALID_MODEL_URI'],
  [/Could not find a registered artifact repository/, 'INVALID_MODEL_URI'],
  [/Run '?(with id=)?[^ ]*'? not found/i, 'RUN_NOT_FOUND'],
  [/Registered Model with name=.* not found/, 'REGISTERED_MODEL_NOT_FOUND'],
  [/alias .* not found/i, 'MODEL_ALIAS_NOT_FOUND'],
  [/Model Version .* not found|No versions of model with name/, 'MODEL_VERSION_NOT_FOUND'],
  [/Logged model with ID .* not found/i, 'LOGGED_MODEL_NOT_FOUND'],
  [/Failed to download artifacts from path/, 'ARTIFACT_NOT_FOUND'],
]

/** Python's errno numbers of a disk that cannot take the download (Linux): the cache's error, not mlflow's. */
const DISK_ERRNOS: Readonly<Record<string, string>> = {'28': 'ENOSPC', '122': 'EDQUOT', '30': 'EROFS'}

function failureOf(stderr: string, what: string, python: string): Error {
  const lines = redactText(stderr).trim().split('\n')
  const tail = lines.slice(-12).join('\n')
  // "OSError: [Errno 28] No space left on device: '/path'": thrown as the file-system error it is, so the
  // cache names its directory (CACHE_IO_FAILED) instead of blaming the store.
  const disk = /\[Errno (28|122|30)\] [^:\n]*(?:: '([^'\n]*)')?/.exec(tail)
  if (disk) return Object.assign(new Error(`${what}: ${disk[0]}`), {code: DISK_ERRNOS[disk[1]!], syscall: 'write', path: disk[2]})
  // mlflow's last line is the exception: "mlflow.exceptions.MlflowException: <message>".
  const last = lines.at(-1)?.replace(/^[\w.]*(Exception|Error): /, '') ?? ''
  for (const [pattern, code] of KNOWN_FAILURES) {
    if (!pattern.test(tail)) continue
    if (code === 'MLFLOW_CLIENT_NOT_FOUND') return noMlflow(python)
    return new MlserveError(code, last || tail)
  }

  return new MlserveError('MLFLOW_DOWNLOAD_FAILED', `${what} failed with the mlflow client (${python}):\n${tail}`)
}

const noMlflow = (python: string, cause?: unknown): MlserveError =>
  new MlserveError(
    'MLFLOW_CLIENT_NOT_FOUND',
    `This model URI needs the mlflow Python client (sqlite, cloud and plugin stores are read through it), and ${python} has no mlflow.`,
    {
      cause,
      suggestions: [
        'Point MLSERVE_PYTHON (or --python) at a Python with mlflow installed, or `pip install mlflow` into python3.',
        'Or serve from an MLflow tracking server (MLFLOW_TRACKING_URI=http://…), which mlserve reads natively.',
      ],
    },
  )

async function runPython(client: PythonClient, args: readonly string[], what: string): Promise<string> {
  const {tracking} = client
  const result = await run(client.python, args, {
    env: {
      ...client.env,
      MLFLOW_TRACKING_URI: tracking.trackingUri,
      MLFLOW_REGISTRY_URI: tracking.registryUri,
      MLFLOW_DISABLE_TELEMETRY: client.env.MLFLOW_DISABLE_TELEMETRY ?? 'true',
    },
    cwd: tracking.cwd,
    signal: client.signal,
    group: true,
  })
  if (result.spawnError === 'ENOENT') throw noMlflow(client.python, result)
  if (result.exitCode !== 0) throw failureOf(result.stderr, what, client.python)
  return result.stdout
}

/** Downloads `uri` with `mlflow artifacts download` and moves the downloaded files into `dest`. */
export async function downloadWithMlflow(client: PythonClient, uri: string, dest: string): Promise<void> {
  const scratch = await mkdtemp(path.join(dest, '.mlflow-download-'))
  try {
    const stdout = await runPython(client, ['-m', 'mlflow', 'artifacts', 'download', '-u', uri, '-d', scratch], `Downloading ${redactText(uri)}`)
    const downloaded = path.resolve(stdout.trim().split('\n').at(-1)?.trim() || scratch)
    const info = await stat(downloaded)
    if (!info.isDirectory()) {
      await rename(downloaded, path.join(dest, path.basename(downloaded)))
      return
    }

    for (const name of await readdir(downloaded)) {
      // eslint-disable-next-line no-await-in-loop
      await rename(path.join(downloaded, name), path.join(dest, name))
    }
  } finally {
    await rm(scratch, {recursive: true, force: true})
  }
}

const VERSION_SCRIPT = `
import sys
from mlflow import MlflowClient
kind, name, arg = sys.argv[1], sys.argv[2], sys.argv[3]
client = MlflowClient()
if kind == "alias":
    print(client.get_model_version_by_alias(name, arg).version)
else:
    versions = client.get_latest_versions(name, None if kind == "latest" else [arg])
    if not versions:
        raise Exception(f"No versions of model with name '{name}' and stage '{arg}' found")
    print(max(int(v.version) for v in versions))
`

/** The version an alias, a stage or `latest` points to now, asked of the registry through MlflowClient. */
export async function versionWithMlflow(client: PythonClient, name: string, kind: 'alias' | 'stage' | 'latest', arg = ''): Promise<string> {
  const stdout = await runPython(client, ['-c', VERSION_SCRIPT, kind, name, arg], `Looking up models:/${name}`)
  return stdout.trim().split('\n').at(-1)?.trim() ?? ''
}
