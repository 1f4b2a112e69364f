// The base of every mlserve command: prints an MlserveError whole and exits with its code.
import {Command} from '@oclif/core'

import {formatError, isMlserveError} from '../errors.js'

export abstract class BaseCommand extends Command {
  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (isMlserveError(error)) {
      process.stderr.write(formatError(error))
      this.exit(error.exitCode)
    }

    return super.catch(error)
  }
}
