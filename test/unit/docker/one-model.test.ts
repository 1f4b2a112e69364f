// build-docker and generate-dockerfile bake one model: several (-m repeated, --models) are refused with
// exit 2 and the ways to serve several models from one image, before anything is resolved or built.
import {execa} from 'execa'
import t from 'tap'

import {MLSERVE_BIN} from '../../helpers/servers.js'

for (const command of ['build-docker', 'generate-dockerfile']) {
  t.test(`${command}: several models are a usage error that names the fix`, async (t) => {
    for (const args of [
      ['-m', './no-such-a', '-m', './no-such-b'],
      ['-m', './no-such-a', '--models', 'models.yaml'],
    ]) {
      // eslint-disable-next-line no-await-in-loop
      const result = await execa('node', [MLSERVE_BIN, command, ...args], {reject: false, env: {DOCKER_HOST: 'tcp://127.0.0.1:9'}})
      t.equal(result.exitCode, 2, args.join(' '))
      t.match(result.stderr, /An image bakes one model; .* cannot go into one image/)
      t.match(result.stderr, /generate-k8s --models FILE/)
      t.notMatch(result.stderr, /MODEL_NOT_FOUND|DOCKER_UNREACHABLE|does not exist/, 'refused before the model or Docker is looked at')
    }
  })
}
