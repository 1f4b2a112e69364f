// Finds an executable on PATH, like `which`.
import {accessSync, constants} from 'node:fs'
import path from 'node:path'

export function which(name: string, envPath: string | undefined): string | undefined {
  if (name.includes(path.sep)) return isExecutable(name) ? name : undefined
  for (const dir of (envPath ?? '').split(path.delimiter)) {
    if (dir === '') continue
    const candidate = path.join(dir, name)
    if (isExecutable(candidate)) return candidate
  }

  return undefined
}

function isExecutable(file: string): boolean {
  try {
    accessSync(file, constants.X_OK)
    return true
  } catch {
    return false
  }
}
