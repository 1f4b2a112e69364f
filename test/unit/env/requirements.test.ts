// A model's requirements: installer options refused, requirement-file directives kept, and an include
// that leaves the model directory refused (also through a symlink; a FIFO include too).
import {execFileSync} from 'node:child_process'
import {symlinkSync} from 'node:fs'
import path from 'node:path'

import t from 'tap'

import {expandRequirements} from '../../../src/env/requirements.js'
import {readEnvSpec} from '../../../src/env/spec.js'
import {model} from '../../helpers/model-dir.js'

// Each read below must finish at once: a FIFO nobody writes to would block a reader forever.
t.setTimeout(60_000)

t.test('requirements: installer options are refused, requirement-file directives kept', async (t) => {
  const dir = model(t, {'requirements.txt': 'numpy\n--prefix=/tmp/elsewhere\n'})
  await t.rejects(expandRequirements(['-r requirements.txt'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: /"--prefix=\/tmp\/elsewhere" in .*requirements\.txt is an installer option, not a requirement/,
  })
  for (const option of ['--target=/tmp/x', '--target /tmp/x', '-t/tmp/x', '--user', '--root=/']) {
    // eslint-disable-next-line no-await-in-loop
    await t.rejects(expandRequirements([option], dir), {code: 'ENV_SPEC_INVALID'}, option)
  }

  const kept = [
    '--index-url https://pypi.org/simple',
    '--extra-index-url=https://example.org/simple',
    '-e ./pkg',
    '--pre',
    'numpy --hash=sha256:00',
  ]
  t.same(
    (await expandRequirements(kept, dir)).map((r) => r.line),
    kept,
  )

  const spec = model(t, {'python_env.yaml': 'python: "3.11"\nbuild_dependencies:\n- pip\n- --target=/tmp/planted\ndependencies: [numpy]\n'})
  await t.rejects(readEnvSpec(spec, undefined, '3.11'), {
    code: 'ENV_SPEC_INVALID',
    message: /"--target=\/tmp\/planted" in the build dependencies of python_env\.yaml is an installer option/,
  })
})

t.test('requirements: an include that leaves the model directory is refused, also through a symlink; a FIFO include too', async (t) => {
  const parent = t.testdir({'outside.txt': 'evil\n', model: {'requirements.txt': '-r ../outside.txt\n', 'sub.txt': 'ok\n'}})
  const dir = path.join(parent, 'model')
  await t.rejects(expandRequirements(['-r requirements.txt'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: /"-r \.\.\/outside\.txt" in .*requirements\.txt includes .*outside\.txt, which is outside the model directory/,
  })
  await t.rejects(expandRequirements(['-r ../../../../../../../etc/hostname'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: /outside the model directory/,
  })
  for (const line of ['-r../outside.txt', '-r\t../outside.txt', '--constraint\t../outside.txt', '-c../outside.txt']) {
    // eslint-disable-next-line no-await-in-loop
    await t.rejects(
      expandRequirements([line], dir),
      {code: 'ENV_SPEC_INVALID', message: /mlserve reads includes written as "-(r|c|-constraint) FILE"/},
      JSON.stringify(line),
    )
  }

  symlinkSync('/etc/hostname', path.join(dir, 'linked.txt'))
  await t.rejects(expandRequirements(['-r linked.txt'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: /linked\.txt \(\/etc\/hostname\), which is outside/,
  })
  t.same(
    await expandRequirements(['-r sub.txt', `-r ${path.join(dir, 'sub.txt')}`, '-r nested/../sub.txt'], dir).then((r) => r.map((x) => x.line)),
    ['ok', 'ok', 'ok'],
  )

  execFileSync('mkfifo', [path.join(dir, 'pipe.txt')])
  await t.rejects(expandRequirements(['-r pipe.txt'], dir), {code: 'ENV_SPEC_INVALID', message: /pipe\.txt is a FIFO/})
})
