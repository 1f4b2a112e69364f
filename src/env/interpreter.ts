// Finds a Python interpreter for the version a model's environment asks for: exact X.Y.Z first, then
// the same X.Y with a warning, never a silent mismatch.
import {readdir} from 'node:fs/promises'
import {homedir} from 'node:os'
import path from 'node:path'

import type {EnvVars} from '../config.js'
import {MlserveError} from '../errors.js'
import {pathExists} from '../util/fs.js'
import {compareVersions, releaseParts} from '../util/version.js'

export interface Interpreter {
  readonly path: string
  readonly version: string
  /** False when only the same X.Y was found for an X.Y.Z request. */
  readonly exact: boolean
}

export interface InterpreterSearch {
  readonly env: EnvVars
  /** Runs `python` and returns its X.Y.Z version, or undefined if it does not run. */
  readonly versionOf: (python: string) => Promise<string | undefined>
}

/** The places interpreters live, most specific first: pyenv, uv-managed pythons, then PATH. */
export async function candidateInterpreters(wanted: string, env: InterpreterSearch['env']): Promise<string[]> {
  const [major, minor] = releaseParts(wanted)
  const found: string[] = []
  const pyenvRoot = env.PYENV_ROOT ?? path.join(env.HOME ?? homedir(), '.pyenv')
  const pyenvVersions = await readdir(path.join(pyenvRoot, 'versions')).catch(() => [] as string[])
  for (const name of pyenvVersions) {
    if (name.startsWith(`${major}.${minor}`)) found.push(path.join(pyenvRoot, 'versions', name, 'bin', 'python'))
  }

  const uvRoot = env.UV_PYTHON_INSTALL_DIR ?? path.join(env.XDG_DATA_HOME ?? path.join(env.HOME ?? homedir(), '.local', 'share'), 'uv', 'python')
  const uvPythons = await readdir(uvRoot).catch(() => [] as string[])
  for (const name of uvPythons) {
    if (name.startsWith(`cpython-${major}.${minor}.`)) found.push(path.join(uvRoot, name, 'bin', 'python3'))
  }

  for (const dir of (env.PATH ?? '').split(path.delimiter)) {
    if (dir === '' || dir.includes(`${path.sep}.pyenv${path.sep}shims`)) continue
    for (const name of [`python${major}.${minor}`, 'python3']) found.push(path.join(dir, name))
  }

  const unique = [...new Set(found)]
  const present = await Promise.all(unique.map((file) => pathExists(file)))
  return unique.filter((_, index) => present[index])
}

/** Picks the best match among probed interpreters, or undefined. */
export function pickInterpreter(wanted: string, probed: ReadonlyArray<{path: string; version: string}>): Interpreter | undefined {
  const wantParts = releaseParts(wanted)
  const sameMinor = probed.filter((p) => {
    const parts = releaseParts(p.version)
    return parts[0] === wantParts[0] && parts[1] === wantParts[1]
  })
  if (wantParts.length >= 3) {
    const exact = sameMinor.find((p) => compareVersions(p.version, wanted) === 0)
    if (exact) return {...exact, exact: true}
  }

  const best = [...sameMinor].sort((a, b) => compareVersions(b.version, a.version))[0]
  if (!best) return undefined
  return {...best, exact: wantParts.length < 3}
}

/** Finds an interpreter for `wanted` ("3.11.7" or "3.11"), or fails naming what was found. */
export async function findInterpreter(wanted: string, search: InterpreterSearch): Promise<Interpreter> {
  if (releaseParts(wanted).length < 2) {
    throw new MlserveError('ENV_SPEC_INVALID', `The model's environment asks for Python '${wanted}', which is not a version.`, {
      suggestions: ['Write the Python version as X.Y.Z (or X.Y) in python_env.yaml.'],
    })
  }

  const candidates = await candidateInterpreters(wanted, search.env)
  const versions = await Promise.all(candidates.map((file) => search.versionOf(file)))
  const probed = candidates.flatMap((file, index) => (versions[index] ? [{path: file, version: versions[index]!}] : []))
  const picked = pickInterpreter(wanted, probed)
  if (picked) return picked

  const seen = [...new Map(probed.map((p) => [p.version, p.path])).entries()].map(([version, file]) => `${version} (${file})`).join(', ')
  const [major, minor] = releaseParts(wanted)
  throw new MlserveError(
    'PYTHON_VERSION_NOT_FOUND',
    `No Python ${wanted} interpreter was found for the model's environment. ${seen ? `Found: ${seen}.` : 'No other Python 3 interpreter was found either.'}`,
    {
      suggestions: [
        `Install Python ${wanted}: \`uv python install ${wanted}\` or \`pyenv install ${wanted}\`, or put python${major}.${minor} on PATH.`,
        'Or serve the model with an interpreter you provide: --env-manager local --python <path>.',
      ],
    },
  )
}
