// `mlserve prepare-env`: builds (or finds) the environment `serve` would use, then exits. Idempotent.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {modelFlags, modelOptionsFrom} from '../cli/flags.js'
import {withStopSignals} from '../cli/signals.js'
import {MlserveError} from '../errors.js'
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
    const options = modelOptionsFrom(flags)
    if (options.envManager === 'local') {
      throw new MlserveError('INVALID_ARGUMENT', 'Prepare env should not be called with local env manager!', {
        suggestions: ['Use --env-manager virtualenv, uv or conda: the local manager has no environment to prepare.'],
      })
    }

    const [{loadModel}, {prepareEnv}] = await Promise.all([import('../serve.js'), import('../env/env.js')])
    const log = createLogger(process.stderr, {tty: process.stderr.isTTY})
    const python = await withStopSignals(log, async ({stop}) => {
      const {ref, mlmodel, backend} = await loadModel(options.modelUri, options.cwd, log, {env: options.env, signal: stop, python: options.python})
      if (backend === 'crate') {
        log.info('an R crate model has no Python environment to prepare: it runs with the system R')
        return undefined
      }

      const serverPackages = flags['enable-mlserver'] ? (await import('../scorer/mlserver.js')).MLSERVER_PACKAGES : undefined
      const env = await prepareEnv({options, modelDir: ref.localDir, mlmodel, log, signal: stop, serverPackages})
      await env.release()
      return env.executable
    })
    if (python) this.log(python)
  }
}
