// `mlserve predict`: one batch prediction through MLflow's own predict script, like `mlflow models predict`.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {parseEnvPairs} from '../cli/env-pairs.js'
import {modelFlags, modelOptionsFrom} from '../cli/flags.js'
import {createLogger} from '../log.js'

export default class Predict extends BaseCommand {
  static override summary = 'Run one prediction with an MLflow model, as `mlflow models predict` does.'

  static override description =
    "Reads the input (a file or stdin), runs MLflow's own prediction script for the model in its environment, and writes the same JSON that POST /invocations returns (to a file or stdout)."

  static override examples = [
    '<%= config.bin %> predict -m ./my-model --env-manager local -i input.json',
    '<%= config.bin %> predict -m ./my-model --env-manager local -t csv -i input.csv -o predictions.json',
  ]

  static override flags = {
    ...modelFlags,
    'input-path': Flags.string({char: 'i', summary: 'The input file (default: stdin).'}),
    'output-path': Flags.string({char: 'o', summary: 'The output file (default: stdout).'}),
    'content-type': Flags.option({
      char: 't',
      options: ['json', 'csv'] as const,
      default: 'json' as const,
      summary: 'The input format: json (any /invocations JSON body) or csv.',
    })(),
    env: Flags.string({
      multiple: true,
      default: [],
      summary: 'KEY=VALUE variables for the prediction process (repeatable).',
    }),
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(Predict)
    const {predict} = await import('../predict.js')
    await predict(
      {
        ...modelOptionsFrom(flags),
        inputPath: flags['input-path'],
        outputPath: flags['output-path'],
        contentType: flags['content-type'],
        extraEnv: parseEnvPairs(flags.env),
      },
      {log: createLogger(process.stderr, {tty: process.stderr.isTTY})},
    )
  }
}
