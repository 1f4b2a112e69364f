// `mlserve env list`: the cached environments, most recently used first.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {envRoot} from '../../env/cache.js'
import {envTable} from '../../env/env-table.js'
import {listEnvs} from '../../env/inventory.js'

export default class EnvList extends BaseCommand {
  static override summary = 'List the cached model environments.'

  static override description =
    'Shows each environment in the cache (MLSERVE_ENV_ROOT, default ~/.cache/mlserve/envs): its key, the model it was built for, Python, mlflow when installed, size, when it was last used, and whether a running mlserve uses it.'

  static override enableJsonFlag = true

  static override flags = {
    root: Flags.string({env: 'MLSERVE_ENV_ROOT', summary: 'The environment cache directory.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(EnvList)
    const root = flags.root ?? envRoot(process.env)
    const envs = await listEnvs(root)
    if (envs.length === 0) this.log(`No environments in ${root}.`)
    else for (const line of envTable(envs)) this.log(line)

    return {root, envs}
  }
}
