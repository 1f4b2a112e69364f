// The base of every mlserve command: maps MlserveError to its message, suggestions and exit code.
import {Command} from '@oclif/core'

import {isMlserveError} from '../errors.js'

export abstract class BaseCommand extends Command {
  protected override async catch(error: Error & {exitCode?: number}): Promise<unknown> {
    if (isMlserveError(error)) {
      this.error(error.message, {exit: error.exitCode, code: error.code, suggestions: [...error.suggestions]})
    }

    return super.catch(error)
  }
}
