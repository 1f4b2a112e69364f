// serve's flags for several models in one mlserve (-m repeated, --models, --default-model, --strict), and
// what they select: one model served as ever, or a named set.
import {Flags} from '@oclif/core'

import {MlserveError} from '../../errors.js'
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
}

export interface MultiModelFlagValues {
  'model-uri'?: string[]
  models?: string
  'default-model'?: string
  strict: boolean
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
    }

/** Checks the selection (cheap: names, the --models file) before any model is resolved. */
export async function selectModels(flags: MultiModelFlagValues): Promise<ModelSelection> {
  const args = flags['model-uri'] ?? []
  const usage = (message: string, suggestion: string) => new MlserveError('INVALID_ARGUMENT', message, {suggestions: [suggestion]})
  if (args.length === 0 && flags.models === undefined) {
    throw usage('Missing required flag model-uri (-m), or --models FILE.', 'Pass the model with -m/--model-uri, e.g. -m ./my-model.')
  }

  const patterns = args.filter((arg) => isModelPattern(arg)).map((arg) => parseModelPattern(arg))
  const plain = args.filter((arg) => !isModelPattern(arg))
  const named = plain.some((arg) => /^[A-Za-z0-9][A-Za-z0-9._-]*=/.test(arg) && parseModelArg(arg).uri !== arg)
  if (args.length === 1 && patterns.length === 0 && flags.models === undefined && !named) {
    if (flags['default-model'] !== undefined)
      throw usage('--default-model needs several models (-m NAME=URI or --models).', 'Drop --default-model.')
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

  return {kind: 'multi', models, patterns, defaultModel, strict: flags.strict}
}
