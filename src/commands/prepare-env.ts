// `mlserve prepare-env`: builds (or finds) the environment `serve` would use, then exits. Idempotent.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {modelFlags, modelOptionsFrom} from '../cli/flags.js'
import {withStopSignals} from '../cli/signals.js'
import {createLogger} from '../log.js'

export default class PrepareEnv extends BaseCommand {
  static override summary = 'Build the environment `serve` would use for a model, without serving it.'

  static override description =
    'Like `mlflow models prepare-env`: resolves the model, builds its environment into the cache (or finds it there) and verifies it. Run it in an image build or a CI step so that `serve` starts without building. Safe to run concurrently: one process builds, the others wait and reuse.'

  static override examples = [
    '<%= config.bin %> prepare-env -m ./my-model',
    '<%= config.bin %> prepare-env -m ./my-model --env-manager uv --install-mlflow',
  ]

  static override flags = {
    ...modelFlags,
    'enable-mlserver': Flags.boolean({
      default: false,
      summary: 'Also install mlserver and mlserver-mlflow: the environment `serve --enable-mlserver` uses.',
    }),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(PrepareEnv)
    const {prepareModelEnv} = await import('../prepare-env.js')
    const log = createLogger(process.stderr, {tty: process.stderr.isTTY})
    const options = {...modelOptionsFrom(flags), enableMlserver: flags['enable-mlserver']}
    const python = await withStopSignals(log, ({stop}) => prepareModelEnv(options, {log, signal: stop}))
    if (python) this.log(python)
  }
}
