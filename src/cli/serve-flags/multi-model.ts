// serve's flags for several models in one mlserve (-m repeated, --models, --default-model, --strict), and
// what they select: one model served as ever, or a named set.
import {Flags} from '@oclif/core'

import {MlserveError} from '../../errors.js'
import {parseSize} from '../../serve/memory.js'
import {isModelPattern, parseModelPattern, type ModelPattern} from '../../serve/model-patterns.js'
import {checkModelNames, parseModelArg, readModelsFile, type ModelSpec} from '../../serve/model-specs.js'
import {modelFlags} from '../flags.js'

export const multiModelFlags = {
  'model-uri': Flags.string({
    char: 'm',
    description: modelFlags['model-uri'].description,
    multiple: true,
    multipleNonGreedy: true,
    summary: `${modelFlags['model-uri'].summary} Repeat it, as -m NAME=URI, to serve several models, or give a registry pattern such as 'models:/*@champion' (see docs/multi-model.md).`,
  }),
  models: Flags.string({
    summary:
      'A YAML or JSON file listing models to serve from this one mlserve: [{name, uri}], each with optional workers, timeout, batch, env_manager, install_mlflow.',
  }),
  'default-model': Flags.string({
    summary: 'With several models: the one POST /invocations goes to (else it answers 404 naming /models/<name>/invocations).',
  }),
  strict: Flags.boolean({
    default: false,
    summary: 'With several models: fail at start when any of them cannot be served (else the others serve and it is reported).',
  }),
  load: Flags.string({
    options: ['eager', 'lazy'],
    summary:
      'With several models: eager loads every model at start (up to --max-loaded and --max-memory; the rest on their first request), lazy loads each on its first request. Default: eager up to the limits.',
  }),
  'max-loaded': Flags.integer({
    env: 'MLSERVE_MAX_LOADED',
    min: 1,
    summary: 'With several models: at most this many loaded at once; loading one more unloads the least recently used idle model first.',
  }),
  'max-memory': Flags.string({
    env: 'MLSERVE_MAX_MEMORY',
    summary:
      "With several models: a memory cap (e.g. 16GiB, 512M) on the models' processes (PSS) and the environments' loaders; a load that would pass it unloads the least recently used idle models first.",
  }),
  'max-loading': Flags.integer({
    env: 'MLSERVE_MAX_LOADING',
    min: 1,
    summary: 'With several models: how many models resolve, build or load at once.',
  }),
}

export interface MultiModelFlagValues {
  'model-uri'?: string[]
  models?: string
  'default-model'?: string
  strict: boolean
  load?: string
  'max-loaded'?: number
  'max-memory'?: string
  'max-loading'?: number
}

/** What serve is asked to serve: one model (exactly as ever) or a named set. */
export type ModelSelection =
  | {readonly kind: 'single'; readonly uri: string}
  | {
      readonly kind: 'multi'
      readonly models: readonly ModelSpec[]
      /** Registry patterns (models:/*@champion): their matches are served under their registered names. */
      readonly patterns: readonly ModelPattern[]
      readonly defaultModel?: string
      readonly strict: boolean
      readonly load?: 'eager' | 'lazy'
      readonly maxLoaded?: number
      /** Bytes. */
      readonly maxMemory?: number
      readonly maxLoading?: number
    }

/** Checks the selection (cheap: names, the --models file) before any model is resolved. */
export async function selectModels(flags: MultiModelFlagValues): Promise<ModelSelection> {
  const args = flags['model-uri'] ?? []
  const usage = (message: string, suggestion: string) => new MlserveError('INVALID_ARGUMENT', message, {suggestions: [suggestion]})
  if (args.length === 0 && flags.models === undefined) {
    throw usage('Missing required flag model-uri (-m), or --models FILE.', 'Pass the model with -m/--model-uri, e.g. -m ./my-model.')
  }

  // Checked first: cheap, and a bad size is a usage error whatever else is wrong.
  const maxMemory = flags['max-memory'] === undefined ? undefined : parseSize(flags['max-memory'])
  const patterns = args.filter((arg) => isModelPattern(arg)).map((arg) => parseModelPattern(arg))
  const plain = args.filter((arg) => !isModelPattern(arg))
  const named = plain.some((arg) => /^[A-Za-z0-9][A-Za-z0-9._-]*=/.test(arg) && parseModelArg(arg).uri !== arg)
  if (args.length === 1 && patterns.length === 0 && flags.models === undefined && !named) {
    const multiOnly = (['default-model', 'load', 'max-loaded', 'max-memory', 'max-loading'] as const).find((flag) => flags[flag] !== undefined)
    if (multiOnly !== undefined)
      throw usage(`--${multiOnly} needs several models (-m NAME=URI or --models).`, `Drop --${multiOnly}, or name the model: -m NAME=URI.`)
    return {kind: 'single', uri: args[0]!}
  }

  const listed = flags.models ? await readModelsFile(flags.models) : []
  for (const item of listed) if ('pattern' in item) patterns.push(item)
  const fromFile = listed.filter((item): item is ModelSpec => !('pattern' in item))
  const models = checkModelNames([...plain.map((arg) => parseModelArg(arg)), ...fromFile])
  const defaultModel = flags['default-model']
  // With a pattern, the default may be one of its matches (known only once the registry is searched).
  if (defaultModel !== undefined && patterns.length === 0 && !models.some((model) => model.name === defaultModel)) {
    throw usage(
      `--default-model ${defaultModel} is not one of the models served (${models.map((model) => model.name).join(', ')}).`,
      'Name one of them.',
    )
  }

  return {
    kind: 'multi',
    models,
    patterns,
    defaultModel,
    strict: flags.strict,
    load: flags.load as 'eager' | 'lazy' | undefined,
    maxLoaded: flags['max-loaded'],
    maxMemory,
    maxLoading: flags['max-loading'],
  }
}
