// Asks a Python interpreter what it is and what it can serve (mlflow version, uvicorn, gunicorn, mlserver).
import type {EnvVars} from '../config.js'
import {MlserveError, messageOf} from '../errors.js'
import {templatePath} from '../paths.js'
import {run, tailLines} from '../util/exec.js'

export interface PythonInfo {
  /** Absolute path of the interpreter (sys.executable). */
  readonly executable: string
  readonly pythonVersion: string
  /** The installed mlflow (or mlflow-skinny) version, when mlflow is importable. */
  readonly mlflowVersion: string | null
  readonly uvicorn: boolean
  readonly gunicorn: boolean
  /** Both mlserver and mlserver_mlflow are installed (what --enable-mlserver runs). */
  readonly mlserver: boolean
}

/** Parses the JSON line templates/python/probe.py prints. */
export function parseProbeOutput(stdout: string): PythonInfo {
  const raw = JSON.parse(stdout.trim().split('\n').pop() ?? '') as Record<string, unknown>
  if (typeof raw.executable !== 'string' || typeof raw.python_version !== 'string') {
    throw new TypeError(`unexpected probe output: ${stdout}`)
  }

  return {
    executable: raw.executable,
    pythonVersion: raw.python_version,
    mlflowVersion: typeof raw.mlflow_version === 'string' ? raw.mlflow_version : null,
    uvicorn: raw.uvicorn === true,
    gunicorn: raw.gunicorn === true,
    mlserver: raw.mlserver === true,
  }
}

/** Runs the probe with `python`; a missing or broken interpreter is a PYTHON_NOT_FOUND error. */
export async function probePython(python: string, env: EnvVars): Promise<PythonInfo> {
  const result = await run(python, [templatePath('python', 'probe.py')], {env, timeoutMs: 60_000})
  const notFound = result.spawnError === 'ENOENT' || result.spawnError === 'EACCES'
  if (result.exitCode !== 0 || notFound) {
    const why = notFound ? 'it was not found' : tailLines(result.stderr || result.message)
    throw new MlserveError('PYTHON_NOT_FOUND', `Could not run the Python interpreter '${python}': ${why}`, {
      suggestions: ['Point --python (or MLSERVE_PYTHON) at a Python 3 interpreter, e.g. --python /usr/bin/python3.'],
    })
  }

  try {
    return parseProbeOutput(result.stdout)
  } catch (error) {
    throw new MlserveError('PYTHON_NOT_FOUND', `'${python}' did not answer like a Python 3 interpreter: ${messageOf(error)}`, {
      cause: error,
      suggestions: ['Point --python (or MLSERVE_PYTHON) at a Python 3 interpreter.'],
    })
  }
}

/** The X.Y.Z version of an interpreter, or undefined when it does not run. */
export async function pythonVersionOf(python: string, env: EnvVars): Promise<string | undefined> {
  const result = await run(python, ['-c', 'import platform; print(platform.python_version())'], {env, timeoutMs: 30_000})
  const version = result.stdout.trim()
  return result.exitCode === 0 && /^\d+\.\d+\.\d+/.test(version) ? version : undefined
}
