// Progress where the wait is: on a terminal, the model-load phase redraws its line with the elapsed time,
// as the environment phases do.
import {spawn} from 'node:child_process'

import t from 'tap'

import {MLSERVE_BIN, eventually} from '../helpers/servers.js'
import {fixtureModel, toolchainEnv, toolchainPython} from '../helpers/toolchain.js'

const quote = (arg: string) => `'${arg.replaceAll("'", "'\\''")}'`

t.test('on a terminal the model load shows its elapsed time while it runs', async (t) => {
  const argv = [
    process.execPath,
    MLSERVE_BIN,
    'serve',
    '-m',
    fixtureModel('slowload'),
    '--env-manager',
    'local',
    '--python',
    toolchainPython(),
    '-p',
    '0',
  ]
  // script(1) gives mlserve a pseudo-terminal; a ^C typed into it is the terminal's SIGINT.
  const child = spawn('script', ['-qfec', `exec ${argv.map(quote).join(' ')}`, '/dev/null'], {
    env: toolchainEnv(),
    stdio: ['pipe', 'pipe', 'pipe'],
  })
  let out = ''
  child.stdout.on('data', (chunk: Buffer) => {
    out += chunk.toString()
  })
  const exited = new Promise((resolve) => child.on('exit', resolve))
  t.teardown(() => {
    child.kill('SIGKILL')
  })

  // eslint-disable-next-line no-control-regex -- the terminal control sequence that clears the line is what is checked
  const live = /\r\u001B\[K\[mlserve\] load model in scorer\.\.\. \d+\.\d s/
  t.ok(await eventually(() => live.test(out), 120_000), 'a redrawn "load model in scorer... N.N s" line')
  t.ok(await eventually(() => /ready: serving/.test(out), 120_000), 'then ready')
  t.match(out, /\[mlserve\] load model in scorer \(\d+\.\d s\)\r?\n/, 'the phase ends with its duration on a line of its own')
  child.stdin.write('\u0003')
  await exited
})
