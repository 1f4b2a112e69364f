// `mlserve build-docker`: an image that serves the model with mlserve, built offline from this machine's wheels.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {modelFlags, modelOptionsFrom} from '../cli/flags.js'
import {imageFlags} from '../cli/image-flags.js'
import {withStopSignals} from '../cli/signals.js'
import {createLogger} from '../log.js'

export default class BuildDocker extends BaseCommand {
  static override summary = 'Build a Docker image that serves the model with `mlserve serve` (like `mlflow models build-docker`).'

  static override description =
    "Builds the model's environment as `serve` would (or finds it in the cache), collects its exact packages as wheels on this machine, and builds the image through the Docker Engine API (DOCKER_HOST, else /var/run/docker.sock) with the container network disabled: nothing in the build downloads. The image runs `mlserve serve` on port 8080 as a non-root user; every serve flag can be appended to `docker run IMAGE`."

  static override examples = [
    '<%= config.bin %> build-docker -m ./my-model -n my-model:1',
    'docker run --rm -p 5001:8080 my-model:1 -w 2 --log-format json',
  ]

  static override flags = {
    ...modelFlags,
    name: Flags.string({char: 'n', default: 'mlflow-pyfunc-servable', summary: "The image name[:tag] (mlflow's default name)."}),
    ...imageFlags,
  }

  async run(): Promise<void> {
    const {flags} = await this.parse(BuildDocker)
    const {buildDockerImage} = await import('../docker/image.js')
    const log = createLogger(process.stderr, {tty: process.stderr.isTTY})
    const options = {
      ...modelOptionsFrom(flags),
      enableMlserver: flags['enable-mlserver'],
      baseImage: flags['base-image'],
      platform: flags.platform,
      tag: flags.name,
    }
    const image = await withStopSignals(log, ({stop}) =>
      buildDockerImage(options, {log, signal: stop, progress: (line) => process.stderr.write(`[build] ${line}\n`)}),
    )
    this.log(`${image.tag} ${image.imageId}`)
  }
}
