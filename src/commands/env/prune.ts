// `mlserve env prune`: removes cached environments by age and total size, never one in use.
import {Flags} from '@oclif/core'

import {BaseCommand} from '../../cli/base-command.js'
import {envRoot} from '../../env/cache.js'
import {listEnvs, parseDuration, parseSize, removeEnv, selectForPrune} from '../../env/inventory.js'
import {MlserveError} from '../../errors.js'

export default class EnvPrune extends BaseCommand {
  static override summary = 'Remove cached environments that have not been used lately, or beyond a total size.'

  static override description =
    'With --older-than, removes environments not used for that long; with --max-size, then removes the least recently used until the cache fits. An environment a running mlserve uses is never removed.'

  static override examples = ['<%= config.bin %> env prune --older-than 30d', '<%= config.bin %> env prune --max-size 10GB --dry-run']

  static override enableJsonFlag = true

  static override flags = {
    'older-than': Flags.string({summary: 'Remove environments unused for longer than this (90m, 12h, 30d, 2w).'}),
    'max-size': Flags.string({summary: 'Then remove the least recently used until the cache is at most this big (500MB, 10GB).'}),
    'dry-run': Flags.boolean({default: false, summary: 'Say what would be removed, remove nothing.'}),
    root: Flags.string({env: 'MLSERVE_ENV_ROOT', summary: 'The environment cache directory.'}),
  }

  async run(): Promise<unknown> {
    const {flags} = await this.parse(EnvPrune)
    if (flags['older-than'] === undefined && flags['max-size'] === undefined) {
      throw new MlserveError('INVALID_ARGUMENT', 'Say what to prune: --older-than, --max-size, or both.')
    }

    const root = flags.root ?? envRoot(process.env)
    const envs = await listEnvs(root)
    const selected = selectForPrune(envs, {
      olderThanMs: flags['older-than'] === undefined ? undefined : parseDuration(flags['older-than']),
      maxSizeBytes: flags['max-size'] === undefined ? undefined : parseSize(flags['max-size']),
    })
    const removed: string[] = []
    for (const env of selected) {
      // eslint-disable-next-line no-await-in-loop
      if (flags['dry-run'] || (await removeEnv(root, env))) {
        removed.push(env.key)
        this.log(`${flags['dry-run'] ? 'would remove' : 'removed'} ${env.key} (${env.model})`)
      }
    }

    const kept = envs.filter((env) => !removed.includes(env.key))
    this.log(`${removed.length} removed, ${kept.length} kept${kept.some((env) => env.inUseBy.length > 0) ? ' (some in use)' : ''}.`)
    return {root, removed, kept: kept.map((env) => env.key), dryRun: flags['dry-run']}
  }
}
