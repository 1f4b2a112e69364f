// oclif's command_not_found hook: a mistyped command gets the closest commands, then exit 2.
import type {Hook} from '@oclif/core'

import {nearNames} from '../util/near.js'

const hook: Hook<'command_not_found'> = async function (options) {
  const shown = (id: string) => `${options.config.bin} ${id.replaceAll(':', ' ')}`
  const ids = options.config.commands.filter((command) => !command.hidden).map((command) => command.id)
  const near = nearNames(options.id, ids, 3)
  const lines = [`Error: command ${options.id.replaceAll(':', ' ')} not found`]
  if (near.length > 0) lines.push(`  hint: Did you mean: ${near.map((id) => shown(id)).join(', or ')}?`)
  lines.push(`  hint: ${options.config.bin} --help lists the commands.`)
  process.stderr.write(lines.join('\n') + '\n')
  this.exit(2)
}

export default hook
