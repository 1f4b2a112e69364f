// Serve's flags for its logs: the access log and the log format.
import {Flags} from '@oclif/core'

import {LOG_FORMATS, type LogFormat} from '../../config.js'

export const loggingFlags = {
  'access-log': Flags.boolean({
    default: true,
    allowNo: true,
    summary: 'Log one line per request to stdout (method, path, status, duration, scorer, request ID).',
  }),
  'log-format': Flags.option({
    options: LOG_FORMATS,
    default: 'text' as LogFormat,
    env: 'MLSERVE_LOG_FORMAT',
    summary: "text (readable), or json: one JSON object per line for mlserve's log, the access log and the scorers' output.",
  })(),
}
