// Serve's flags are declared once: the commands that pass them on, and smoke, take serve's names, bounds and defaults.
import t from 'tap'

import {serveFlagDefaults, serveFlags, serveOptionsFrom} from '../../../src/cli/serve-flags.js'
import {smokeServeOptions} from '../../../src/cli/smoke-options.js'
import GenerateK8s, {PASS_THROUGH} from '../../../src/commands/generate-k8s.js'
import PrepareEnv from '../../../src/commands/prepare-env.js'
import Smoke from '../../../src/commands/smoke.js'
import BuildDocker from '../../../src/commands/build-docker.js'

type Declared = {char?: string; min?: number; max?: number; options?: readonly string[]; type: string; allowNo?: boolean}
const serve = serveFlags as unknown as Record<string, Declared>
const shape = (flag: Declared) => ({
  type: flag.type,
  char: flag.char,
  min: flag.min,
  max: flag.max,
  options: flag.options,
  allowNo: flag.allowNo,
})

t.test("generate-k8s passes every serve flag the image does not fix, with serve's name and bounds", async (t) => {
  const k8s = GenerateK8s.flags as unknown as Record<string, Declared>
  // The container fixes these: it listens on 0.0.0.0:8080, logs JSON, and serves the baked model as built.
  const fixedByTheImage = [
    'model-uri',
    'env-manager',
    'no-conda',
    'install-mlflow',
    'speedups',
    'build-timeout',
    'python',
    'port',
    'host',
    'log-format',
  ]
  // generate-k8s reads these itself (the drain, the startupProbe, the V2 protocol) and passes them on.
  const readByGenerateK8s = ['grace-period', 'load-timeout', 'enable-mlserver']
  // Files on this machine: the manifests take Secrets instead (--auth-secret, --tls-secret) and refuse these with that fix.
  const needSecrets = ['auth-token-file', 'tls-cert', 'tls-key', 'tls-client-ca']
  // Several models in one image are not built yet (issue 27 step 1): the image serves its one baked model.
  fixedByTheImage.push('models', 'default-model', 'strict', 'load', 'max-loaded', 'max-memory', 'max-loading')
  t.same(
    Object.keys(serveFlags)
      .filter((name) => !fixedByTheImage.includes(name) && !readByGenerateK8s.includes(name) && !needSecrets.includes(name))
      .sort(),
    [...PASS_THROUGH].sort(),
    'every other serve flag is passed through',
  )
  for (const name of [...PASS_THROUGH, 'grace-period', 'enable-mlserver']) t.same(shape(k8s[name]!), shape(serve[name]!), `--${name}`)
  // The one deliberate difference: 0 (no bound) cannot size a startupProbe.
  t.same(shape(k8s['load-timeout']!), {...shape(serve['load-timeout']!), min: 1}, '--load-timeout: at least 1')
  for (const name of PASS_THROUGH) t.equal((k8s[name] as {env?: string}).env, undefined, `--${name} reads no variable of this machine`)
})

t.test('smoke, build-docker and prepare-env declare their serve flags as serve does', async (t) => {
  const commands = {smoke: Smoke.flags, 'build-docker': BuildDocker.flags, 'prepare-env': PrepareEnv.flags}
  for (const [command, flags] of Object.entries(commands)) {
    const declared = flags as unknown as Record<string, Declared>
    for (const name of ['timeout', 'load-timeout', 'enable-mlserver', 'env-manager', 'python', 'build-timeout', 'speedups']) {
      if (declared[name]) t.same(shape(declared[name]!), shape(serve[name]!), `${command} --${name}`)
    }
  }
})

t.test("smoke starts the model with serve's defaults except what it overrides on purpose", async (t) => {
  const given = {
    'model-uri': './m',
    'env-manager': 'local',
    'no-conda': false,
    'install-mlflow': false,
    speedups: true,
    'build-timeout': 1800,
    python: 'python3',
  } as const
  const smoke = smokeServeOptions({...given, timeout: 60, 'load-timeout': 600, 'enable-mlserver': false})
  const served = serveOptionsFrom({...serveFlagDefaults(), ...given})
  const differ = Object.keys({...smoke, ...served}).filter(
    (key) => JSON.stringify(smoke[key as keyof typeof smoke]) !== JSON.stringify(served[key as keyof typeof served]),
  )
  // A free port (never 5000), a short drain (smoke stops at once after its checks), no access log (the report is its output).
  t.same(differ.sort(), ['accessLog', 'gracePeriodMs', 'port'])
  t.match(smoke, {host: '127.0.0.1', port: 0, gracePeriodMs: 5000, accessLog: false, maxBodyBytes: 100 * 1024 * 1024, maxQueue: 256})
})

t.test("smoke's --timeout, --load-timeout and --enable-mlserver reach serve's options", async (t) => {
  const given = {
    'model-uri': './m',
    'env-manager': 'local',
    'no-conda': false,
    'install-mlflow': false,
    speedups: true,
    'build-timeout': 0,
    python: 'py',
  } as const
  t.match(smokeServeOptions({...given, timeout: 7, 'load-timeout': 9, 'enable-mlserver': true}), {
    timeoutSeconds: 7,
    loadTimeoutMs: 9000,
    enableMlserver: true,
  })
})
