// `mlserve build-docker`: an image that serves the model with mlserve, built offline from the environment built on this machine.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../cli/base-command.js'
import {modelFlags} from '../cli/flags.js'
import {imageFlags, imageOptionsFrom} from '../cli/image-flags.js'
import {withStopSignals} from '../cli/signals.js'
import {createLogger} from '../log.js'

export default class BuildDocker extends BaseCommand {
  static override summary = 'Build a Docker image that serves the model with `mlserve serve` (like `mlflow models build-docker`).'

  static override description =
    "Builds the model's environment as `serve` would (or finds it in the cache) and puts that environment (relocatable, bytecode compiled), Node and mlserve into the image: nothing in the build downloads, and it runs with the container network disabled. Talks to the Docker Engine API at DOCKER_HOST (else /var/run/docker.sock); never pulls: the base image must be in the daemon. Two images: the environment image (mlserve-env:<digest>, built once per environment and base image) and the model image on it, so a new model on the same environment only sends and adds the model. The image runs `mlserve serve` on 0.0.0.0:8080 as user 10001; every serve flag can be appended to `docker run IMAGE`, every MLFLOW_*/MLSERVE_* variable set with -e."

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
    const options = {...imageOptionsFrom(flags), tag: flags.name}
    const image = await withStopSignals(log, ({stop}) =>
      buildDockerImage(options, {log, signal: stop, progress: (line) => process.stderr.write(`[build] ${line}\n`)}),
    )
    this.log(`${image.tag} ${image.imageId}`)
  }
}
