// `mlserve generate-dockerfile`: the build context of build-docker's image, for other builders.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {modelFlags} from '../cli/flags.js'
import {imageFlags, imageOptionsFrom} from '../cli/image-flags.js'
import {withStopSignals} from '../cli/signals.js'
import {createLogger} from '../log.js'

export default class GenerateDockerfile extends BaseCommand {
  static override summary =
    'Write the Dockerfile and build context of the image `build-docker` makes (like `mlflow models generate-dockerfile`).'

  static override description =
    "The directory holds the Dockerfile and everything it copies (the model's environment as `serve` builds it, Node, mlserve, the model): `docker build` (or podman, buildah, kaniko) builds it with no network, e.g. `docker build --network none -t my-model DIR`. One Dockerfile with the layers of build-docker's two images."

  static override examples = [
    '<%= config.bin %> generate-dockerfile -m ./my-model -d ./my-model-image && docker build --network none -t my-model ./my-model-image',
  ]

  static override flags = {
    ...modelFlags,
    'output-directory': Flags.string({
      char: 'd',
      default: 'mlflow-dockerfile',
      summary: "The directory to write the build context to (created; must be empty). mlflow's default name.",
    }),
    ...imageFlags,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(GenerateDockerfile)
    const {generateDockerfile} = await import('../docker/image.js')
    const log = createLogger(process.stderr, {tty: process.stderr.isTTY})
    const options = imageOptionsFrom(flags)
    const dir = await withStopSignals(log, ({stop}) =>
      generateDockerfile(options, flags['output-directory'], {log, signal: stop, progress: (line) => process.stderr.write(`${line}\n`)}),
    )
    this.log(dir)
  }
}
