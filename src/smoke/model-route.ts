// `mlserve smoke --url URL --model NAME`: one model of a multi-model server, checked through its own
// routes (/models/<name>/invocations, /models/<name>/ping, /models/<name>/version).
import {MlserveError} from '../errors.js'
import {isModelName} from '../serve/model-specs.js'

/** The base URL the checks call for `--model NAME` (the server's URL when no model is named). */
export function smokeBaseUrl(url: string, model: string | undefined): string {
  if (model === undefined) return url
  if (!isModelName(model)) {
    throw new MlserveError('INVALID_ARGUMENT', `--model ${model} is not a model name.`, {
      suggestions: ['A model name is 1 to 128 letters, digits, ".", "_" or "-" (as GET /models lists them).'],
    })
  }

  return `${url.replace(/\/+$/, '')}/models/${model}`
}

/** A URL's path, without its trailing slash: what the checks put before /invocations, /ping and /version. */
export const pathPrefixOf = (url: string): string => new URL(url).pathname.replace(/\/+$/, '')
