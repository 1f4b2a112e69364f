// Repeated `--env KEY=VALUE` flags become one record of variables.
import {MlserveError} from '../errors.js'

/** Parses repeated `--env KEY=VALUE` flags; the value may contain `=` and be empty, the key may not. */
export function parseEnvPairs(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {}
  for (const pair of pairs) {
    const index = pair.indexOf('=')
    if (index <= 0) {
      throw new MlserveError('INVALID_ARGUMENT', `${pair} is not a valid key value pair, expecting \`key=value\``)
    }

    out[pair.slice(0, index)] = pair.slice(index + 1)
  }

  return out
}
