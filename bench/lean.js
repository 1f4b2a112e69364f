// The lean protocol's benchmark (issue 24) in one command: bench/proxy.js --fast-path, -w 1, at 1 and 16
// connections, first on the trivial `sum` fixture, then on the bundled iris example. Each run alternates
// `mlflow models serve`, `mlserve serve --no-fast-path` and `mlserve serve` (the default: the fast path and
// the lean protocol) with the same interpreter, and prints their req/s and p50s with mlserve's ratios.
//
//   node bench/lean.js [--rounds 3] [--duration 5] [--warmup 2] [--connections 1,16] [--mlserve-python <python>]
import {spawnSync} from 'node:child_process'
import path from 'node:path'
import {parseArgs} from 'node:util'

import {REPO_ROOT} from '../test/helpers/toolchain.js'

const {values} = parseArgs({
  options: {
    rounds: {type: 'string', default: '3'},
    duration: {type: 'string', default: '5'},
    warmup: {type: 'string', default: '2'},
    connections: {type: 'string', default: '1,16'},
    'mlserve-python': {type: 'string'},
  },
})
const common = ['--fast-path', '--workers', '1', '--connections', values.connections, '--rounds', values.rounds, '--duration', values.duration]
common.push('--warmup', values.warmup, ...(values['mlserve-python'] ? ['--mlserve-python', values['mlserve-python']] : []))
const iris = path.join(REPO_ROOT, 'examples/sklearn-iris')
const runs = [
  {name: 'sum (fixture)', args: []},
  {name: 'iris (examples/sklearn-iris)', args: ['--model', iris, '--body', path.join(iris, 'serving_input_example.json')]},
]
let failed = 0
for (const run of runs) {
  console.log(`\n## ${run.name}\n`)
  const {status} = spawnSync(process.execPath, [path.join(REPO_ROOT, 'bench/proxy.js'), ...common, ...run.args], {stdio: 'inherit'})
  if (status !== 0) failed = status ?? 1
}

process.exitCode = failed
