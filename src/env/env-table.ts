// `env list`'s text output: a header over one aligned row per cached environment.
import type {EnvEntry} from './inventory.js'

const megabytes = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(0)} MB`

const HEADER = ['KEY', 'MANAGER', 'PYTHON', 'MLFLOW', 'SIZE', 'LAST USED', 'IN USE', 'MODEL'] as const

/** The lines `env list` prints: the header, then one row per environment (the last column, the model, unpadded). */
export function envTable(envs: readonly EnvEntry[]): string[] {
  const rows = envs.map((env) => [
    env.key,
    env.manager,
    env.python,
    env.mlflow ?? '-',
    megabytes(env.sizeBytes),
    env.lastUsed ?? 'never',
    env.inUseBy.length > 0 ? `pid ${env.inUseBy.join(', ')}` : '-',
    env.model,
  ])
  const table = [[...HEADER], ...rows]
  const widths = HEADER.map((_, column) => Math.max(...table.map((row) => row[column]!.length)))
  return table.map((row) => row.map((cell, column) => (column === row.length - 1 ? cell : cell.padEnd(widths[column]!))).join('  '))
}
