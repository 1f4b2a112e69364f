// Small file-system questions.
import {access} from 'node:fs/promises'

export const pathExists = (file: string): Promise<boolean> =>
  access(file).then(
    () => true,
    () => false,
  )
