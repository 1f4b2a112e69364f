// The wheelhouse of an image: the exact distributions of the model's environment (as serve built it on
// this machine), as wheels for the same Python and platform, collected once into mlserve's cache.
import path from 'node:path'

import {ensureBuilt, missingFile, parseBaseRecord, contentKey, type CacheKind, type CacheRecord} from '../cache/build-once.js'
import {lockTimeoutMs} from '../cache/lock.js'
import type {EnvVars} from '../config.js'
import {envRoot} from '../env/cache.js'
import {MlserveError} from '../errors.js'
import type {Logger} from '../log.js'
import {describeFailure, run, tailLines} from '../util/exec.js'
import {writeFile} from 'node:fs/promises'

/** A cached wheelhouse: `requirements.txt` (name==version, one per line) and `wheels/`. */
export interface Wheelhouse {
  readonly dir: string
  readonly requirementsFile: string
  readonly wheelsDir: string
  readonly requirements: readonly string[]
}

interface WheelhouseRecord extends CacheRecord {
  readonly python: string
  readonly count: number
}

const WHEELHOUSE_KIND: CacheKind<WheelhouseRecord> = {
  name: 'wheelhouse',
  parse: (value) => {
    const record = parseBaseRecord(value)
    return record && typeof record.python === 'string' ? (record as unknown as WheelhouseRecord) : undefined
  },
  verify: (dir) => missingFile(dir, ['requirements.txt', 'wheels']),
}

/** Prints name==version of every distribution installed in the interpreter's environment. */
const FREEZE = `
import importlib.metadata as m, re
seen = {}
for d in m.distributions():
    name = d.metadata["Name"]
    if not name or not d.version:
        continue
    key = re.sub(r"[-_.]+", "-", name).lower()
    seen.setdefault(key, f"{key}=={d.version}")
print("\\n".join(sorted(seen.values())))
`

/** The exact distributions (name==version, sorted) installed in an environment. */
export async function freezeEnv(python: string, env: EnvVars): Promise<string[]> {
  const result = await run(python, ['-I', '-c', FREEZE], {env})
  if (result.exitCode !== 0) {
    throw new MlserveError(
      'WHEELHOUSE_FAILED',
      `Could not list the packages of the model's environment (${describeFailure(python, result)}): ${tailLines(result.stderr)}`,
    )
  }

  return result.stdout
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean)
}

export interface WheelhouseRequest {
  /** The exact distributions to collect (freezeEnv's output). */
  readonly requirements: readonly string[]
  /** The model environment's interpreter: pip resolves wheels for its Python and platform. */
  readonly envPython: string
  /** Its Python X.Y (part of the key). */
  readonly pythonVersion: string
  /** The interpreter whose pip collects the wheels (pip >= 22.3 for --python). */
  readonly pipPython: string
  readonly env: EnvVars
  readonly log: Logger
  readonly signal?: AbortSignal
}

/**
 * Collects the wheels with `pip wheel --no-deps` (PyPI, PIP_INDEX_URL / PIP_FIND_LINKS and pip's cache as
 * configured; sdists are built into wheels here, so the image build compiles nothing). Cached per set of
 * requirements, Python X.Y and platform: a second image of the same environment collects nothing.
 */
export async function ensureWheelhouse(request: WheelhouseRequest): Promise<Wheelhouse> {
  const {requirements, log, env} = request
  const key = `wheels-${contentKey({v: 1, requirements, python: request.pythonVersion, platform: `${process.platform}-${process.arch}`})}`
  const entry = await ensureBuilt({
    kind: WHEELHOUSE_KIND,
    root: path.join(envRoot(env), '.wheels'),
    key,
    signal: request.signal,
    lockTimeoutMs: lockTimeoutMs(env),
    record: {python: request.pythonVersion, count: requirements.length},
    onWait: (wait) => log.info(`waiting for another mlserve (pid ${wait.owner.pid}) that collects the same wheels: ${wait.detail}`),
    onDamaged: (reason) => log.warn(`the cached wheelhouse is damaged (${reason}); collecting it again`),
    build: async (dir, context) => {
      const phase = log.phase(`collect ${requirements.length} wheels for Python ${request.pythonVersion} (once per environment)`, {live: true})
      const file = path.join(dir, 'requirements.txt')
      await writeFile(file, requirements.join('\n') + '\n')
      const args = [
        '-m',
        'pip',
        '--python',
        request.envPython,
        'wheel',
        '--no-deps',
        '--quiet',
        '--disable-pip-version-check',
        '--no-input',
        '--wheel-dir',
        path.join(dir, 'wheels'),
        '-r',
        file,
      ]
      const result = await run(request.pipPython, args, {env: {...env, PIP_NO_INPUT: '1'}, signal: context.signal, group: true})
      if (result.exitCode !== 0) {
        throw new MlserveError(
          'WHEELHOUSE_FAILED',
          `Collecting the wheels of the model's environment failed (${describeFailure(request.pipPython, result)}): ${tailLines(result.stderr, 8)}`,
          {
            suggestions: [
              'The image is built offline from wheels collected on this machine: pip must reach PyPI (or PIP_INDEX_URL / PIP_FIND_LINKS) here.',
              `--python names the interpreter whose pip collects them (pip >= 22.3); now: ${request.pipPython}.`,
            ],
          },
        )
      }

      phase.done()
    },
  })
  return {
    dir: entry.dir,
    requirementsFile: path.join(entry.dir, 'requirements.txt'),
    wheelsDir: path.join(entry.dir, 'wheels'),
    requirements,
  }
}
