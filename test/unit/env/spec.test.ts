import path from 'node:path'

import t from 'tap'

import {expandRequirements, sortedRequirements} from '../../../src/env/requirements.js'
import {parsePythonEnv, pythonEnvFromConda} from '../../../src/env/python-env.js'
import {readEnvSpec} from '../../../src/env/spec.js'
import {BOMB, model} from '../../helpers/model-dir.js'

const req = (line: string, isConstraint = false) => ({line, isConstraint})

// The model in mlflow's tests/resources/pyfunc_models/2.8.1, as spec 2.2 describes it.
const GOLDEN = {
  'python_env.yaml':
    'python: 3.9.13\nbuild_dependencies:\n  - pip==23.3\n  - setuptools\n  - wheel==0.41.2\ndependencies:\n  - -r requirements.txt\n',
  'requirements.txt': 'mlflow==2.8.1\ncloudpickle==2.2.1\n',
  'conda.yaml':
    'channels:\n  - conda-forge\ndependencies:\n  - python=3.9.13\n  - pip<=23.3\n  - pip:\n      - mlflow==2.8.1\n      - cloudpickle==2.2.1\nname: mlflow-env\n',
}
const ENV_DICT = {conda: 'conda.yaml', virtualenv: 'python_env.yaml'}
const OLD_MODEL =
  'This model is missing python_env.yaml, which is because it was logged in an older versionof MLflow (< 1.26.0) that does not support restoring a model environment with virtualenv. Attempting to extract model dependencies from requirements.txt and conda.yaml instead.'

t.test('requirement lines: strip, inline comments, continuations, comments and blanks', async (t) => {
  const lines = [
    '  numpy==1.26  ',
    'pandas>=2 # inline comment',
    'scikit-learn\t#tab-then-hash-is-kept',
    '# a comment',
    '',
    '   ',
    'torch \\',
    '  ==2.1',
    'a\\\\',
    'b',
    '--extra-index-url https://example.com/simple',
    '--find-links ./wheels',
    'last\\',
  ]
  t.same(await expandRequirements(lines, '/nowhere'), [
    req('numpy==1.26'),
    req('pandas>=2'),
    req('scikit-learn\t#tab-then-hash-is-kept'),
    req('torch ==2.1'),
    req('ab'),
    req('--extra-index-url https://example.com/simple'),
    req('--find-links ./wheels'),
    req('last'),
  ])
  // mlflow keeps these as requirement lines, and pip then reads the file they name: mlserve refuses them.
  for (const line of ['-rno-space.txt', '--requirement=']) {
    // eslint-disable-next-line no-await-in-loop
    await t.rejects(expandRequirements([line], '/nowhere'), {code: 'ENV_SPEC_INVALID', message: /mlserve reads includes written as/}, line)
  }
})

t.test('-r and -c expand recursively, relative to the including file', async (t) => {
  const dir = t.testdir({
    'requirements.txt': 'mlflow==2.8.1\n-r sub/more.txt\n-c constraints.txt\n',
    'constraints.txt': 'numpy<2\r\n--requirement sub/in-constraints.txt\r\n',
    sub: {
      'more.txt': 'pandas\n--constraint=../pins.txt\n--requirement=deeper/last.txt\n',
      'in-constraints.txt': 'scipy\n',
      deeper: {'last.txt': 'tqdm  # progress\n'},
    },
    'pins.txt': 'pandas==2.1.4\n-r sub/in-constraints.txt\n',
  })
  t.same(await expandRequirements(['-r requirements.txt', 'cloudpickle'], dir), [
    req('mlflow==2.8.1'),
    req('pandas'),
    req('pandas==2.1.4', true),
    req('scipy'),
    req('tqdm'),
    req('numpy<2', true),
    req('scipy'),
    req('cloudpickle'),
  ])
  t.same(
    await expandRequirements([`-r ${path.join(dir, 'sub/in-constraints.txt')}`], dir),
    [req('scipy')],
    'absolute paths inside the model directory',
  )
  t.same(await expandRequirements(['-c   pins.txt'], dir), [req('pandas==2.1.4', true), req('scipy')], 'any whitespace after -c')
})

t.test('a custom reader sees the resolved paths', async (t) => {
  const read: string[] = []
  const readText = async (file: string) => {
    read.push(file)
    return file.endsWith('a.txt') ? '-r b.txt' : 'x'
  }

  t.same(await expandRequirements(['-r dir/a.txt'], '/m', readText), [req('x')])
  t.same(read, ['/m/dir/a.txt', '/m/dir/b.txt'])
})

t.test('a missing included file names the file and the line that includes it', async (t) => {
  const dir = t.testdir({'requirements.txt': 'numpy\n-c missing.txt\n'})
  await t.rejects(expandRequirements(['-r requirements.txt'], dir), {
    code: 'ENV_SPEC_INVALID',
    exitCode: 17,
    message: `Could not read requirements file ${path.join(dir, 'missing.txt')} (included by "-c missing.txt" in ${path.join(dir, 'requirements.txt')}): no such file.`,
  })
  await t.rejects(expandRequirements(['-r nope.txt'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: `Could not read requirements file ${path.join(dir, 'nope.txt')} (included by "-r nope.txt" in the requirement lines given for ${dir}): no such file.`,
  })
})

t.test('include cycles are an error, not an endless loop', async (t) => {
  const dir = t.testdir({'a.txt': 'x\n-r b.txt\n', 'b.txt': '-c a.txt\n', 'self.txt': '-r ./self.txt\n'})
  const [a, b] = [path.join(dir, 'a.txt'), path.join(dir, 'b.txt')]
  await t.rejects(expandRequirements(['-r a.txt'], dir), {
    code: 'ENV_SPEC_INVALID',
    message: `Requirements files include each other in a cycle: ${a} -> ${b} -> ${a} (line "-c a.txt" in ${b}).`,
  })
  await t.rejects(expandRequirements(['-r self.txt'], dir), {code: 'ENV_SPEC_INVALID', message: /cycle/})
  const diamond = t.testdir({'top.txt': '-r leaf.txt\n-r leaf.txt\n', 'leaf.txt': 'y\n'})
  t.same(await expandRequirements(['-r top.txt'], diamond), [req('y'), req('y')], 'the same file twice is no cycle')
})

t.test('sortedRequirements orders as Python sorts (line, is_constraint) tuples', async (t) => {
  const input = [req('b'), req('a', true), req('B'), req('a'), req('-r x')]
  t.same(sortedRequirements(input), [req('-r x'), req('B'), req('a'), req('a', true), req('b')])
  t.same(input[0], req('b'), 'the input is left as it was')
})

t.test('python_env.yaml: the golden example', async (t) => {
  t.same(parsePythonEnv(GOLDEN['python_env.yaml'], 'python_env.yaml'), {
    python: '3.9.13',
    buildDependencies: ['pip==23.3', 'setuptools', 'wheel==0.41.2'],
    dependencies: ['-r requirements.txt'],
  })
  t.same(parsePythonEnv('python: "3.11"\nbuild_dependencies: null\n', 'f'), {python: '3.11', buildDependencies: [], dependencies: []})
  t.same(parsePythonEnv('{}', 'f'), {python: undefined, buildDependencies: [], dependencies: []})
  t.same(parsePythonEnv('python: ""', 'f').python, undefined, 'an empty version means the default, as `python or PYTHON_VERSION`')
})

t.test("python_env.yaml errors carry mlflow's messages", async (t) => {
  const cases: Array<[string, string | RegExp]> = [
    ['python: 3.10\n', "`python` must be a string but got <class 'float'>"],
    ['python: 3\n', "`python` must be a string but got <class 'int'>"],
    ['python: [3.9]\n', "`python` must be a string but got <class 'list'>"],
    ['python: "3.9"\ndependencies: numpy\n', "`dependencies` must be a list but got <class 'str'>"],
    ['build_dependencies: {pip: 23}\n', "`build_dependencies` must be a list but got <class 'dict'>"],
    ['dependencies: [numpy, 1.5]\n', "`dependencies` must be a list of strings but has 1.5 (<class 'float'>)"],
    ['python: "3.9"\nname: env\n', "_PythonEnv.__init__() got an unexpected keyword argument 'name'"],
    ['- a\n', 'f.yaml is not a YAML mapping.'],
    ['', 'f.yaml is not a YAML mapping.'],
    ['python: [unclosed', /^Could not parse f\.yaml: /],
  ]
  for (const [text, message] of cases) t.throws(() => parsePythonEnv(text, 'f.yaml'), {code: 'ENV_SPEC_INVALID', exitCode: 17, message}, text)
  try {
    parsePythonEnv('python: 3.10\n', 'f.yaml')
  } catch (error) {
    t.match(error, {suggestions: [/python: "3.1"/]}, 'the suggestion says to quote the version')
  }
})

t.test('conda.yaml → python env: python pin, build packages, the pip section', async (t) => {
  t.same(pythonEnvFromConda(GOLDEN['conda.yaml'], 'conda.yaml'), {
    python: '3.9.13',
    buildDependencies: ['pip<=23.3'],
    dependencies: ['mlflow==2.8.1', 'cloudpickle==2.2.1'],
    warnings: [],
  })
  const text = 'dependencies:\n- python>=3.8\n- pip=23.3\n- setuptools\n- wheel!=0.40\n- python=3.9\n- pip:\n  - old\n- pip: [numpy==1.26]\n'
  t.same(
    pythonEnvFromConda(text, 'c.yaml'),
    {
      python: '3.8',
      buildDependencies: ['pip==23.3', 'setuptools', 'wheel!=0.40', 'python==3.9'],
      dependencies: ['numpy==1.26'],
      warnings: [],
    },
    'operator dropped from python; "=" becomes "=="; a second python is a build dependency; the last pip section wins',
  )
  t.same(pythonEnvFromConda('dependencies: [python==3.10.1]', 'c'), {python: '3.10.1', buildDependencies: [], dependencies: [], warnings: []})
  t.same(pythonEnvFromConda('name: x\n', 'c'), {python: undefined, buildDependencies: [], dependencies: [], warnings: []})
})

t.test('conda dependencies a virtualenv cannot install are warned about, not installed', async (t) => {
  const text = "dependencies:\n- python=3.8.*\n- numpy=1.26\n- it's\n- pip:\n  - mlflow\n"
  t.same(pythonEnvFromConda(text, 'c'), {
    python: undefined,
    buildDependencies: [],
    dependencies: ['mlflow'],
    warnings: [`The following conda dependencies will not be installed in the resulting environment: ['python=3.8.*', 'numpy=1.26', "it's"]`],
  })
})

t.test("conda.yaml errors carry mlflow's messages", async (t) => {
  const cases: Array<[string, string | RegExp]> = [
    ['dependencies: [python]', 'Invalid dependency for python: python. It must be pinned (e.g. python=3.8.13).'],
    ['dependencies: [python>3.8]', "Invalid version comparator for python: '>'. Must be one of ['<=', '>=', '=', '==']."],
    ['dependencies: [python<3.12]', "Invalid version comparator for python: '<'. Must be one of ['<=', '>=', '=', '==']."],
    ['dependencies: [python!=3.8]', "Invalid version comparator for python: '!='. Must be one of ['<=', '>=', '=', '==']."],
    [
      'dependencies: [{conda-forge: [x]}]',
      `Invalid conda dependency: {'conda-forge': ['x']}. Must be str or dict in the form of {"pip": [...]}`,
    ],
    ['dependencies: [3]', 'Invalid conda dependency: 3. Must be str or dict in the form of {"pip": [...]}'],
    ['dependencies: [{pip: numpy}]', "`dependencies` must be a list but got <class 'str'>"],
    ['dependencies: numpy', /`dependencies` must be a list\.$/],
    ['- numpy', /`dependencies` must be a list\.$/],
    ['dependencies: [', /^Could not parse c\.yaml/],
  ]
  for (const [text, message] of cases) t.throws(() => pythonEnvFromConda(text, 'c.yaml'), {code: 'ENV_SPEC_INVALID', message}, text)
})

t.test('readEnvSpec: the golden model, and its expanded requirements', async (t) => {
  const dir = t.testdir(GOLDEN)
  const spec = await readEnvSpec(dir, ENV_DICT, '3.12.1')
  t.same(spec, {
    python: '3.9.13',
    buildDependencies: ['pip==23.3', 'setuptools', 'wheel==0.41.2'],
    dependencies: ['-r requirements.txt'],
    source: 'python_env.yaml',
    condaYaml: GOLDEN['conda.yaml'],
    condaYamlPath: path.join(dir, 'conda.yaml'),
    warnings: [],
  })
  const requirements = await expandRequirements(spec.dependencies, dir)
  t.same(requirements, [req('mlflow==2.8.1'), req('cloudpickle==2.2.1')])
  t.same(sortedRequirements(requirements), [req('cloudpickle==2.2.1'), req('mlflow==2.8.1')])
})

t.test('readEnvSpec: a python_env.yaml without python gets the default, with a warning', async (t) => {
  const dir = t.testdir({'python_env.yaml': 'dependencies: [numpy]\n'})
  t.same(await readEnvSpec(dir, undefined, '3.11.7'), {
    python: '3.11.7',
    buildDependencies: [],
    dependencies: ['numpy'],
    source: 'python_env.yaml',
    warnings: [`${path.join(dir, 'python_env.yaml')} does not include a python version specification. Using the current python version 3.11.7.`],
  })
})

t.test('readEnvSpec: an old model (conda.yaml + requirements.txt) installs -r requirements.txt', async (t) => {
  const conda = 'dependencies:\n- python=3.8.13\n- pip<=21.2\n- numpy=1.26\n- pip: [mlflow, not-used]\n'
  const dir = t.testdir({'conda.yaml': conda, 'requirements.txt': 'mlflow\n'})
  t.same(await readEnvSpec(dir, 'conda.yaml', '3.12.1'), {
    python: '3.8.13',
    buildDependencies: ['pip<=21.2'],
    dependencies: ['-r requirements.txt'],
    source: 'conda.yaml + requirements.txt',
    condaYaml: conda,
    condaYamlPath: path.join(dir, 'conda.yaml'),
    warnings: [OLD_MODEL, "The following conda dependencies will not be installed in the resulting environment: ['numpy=1.26']"],
  })
})

t.test('readEnvSpec: conda.yaml alone gives everything, python defaulted with its warning', async (t) => {
  const conda = 'dependencies:\n- python=3.8.*\n- pip:\n  - scikit-learn==1.3\n'
  const dir = t.testdir({'my-env.yaml': conda})
  const spec = await readEnvSpec(dir, 'my-env.yaml', '3.10.4')
  t.same(
    spec,
    {
      python: '3.10.4',
      buildDependencies: [],
      dependencies: ['scikit-learn==1.3'],
      source: 'my-env.yaml',
      condaYaml: conda,
      condaYamlPath: path.join(dir, 'my-env.yaml'),
      warnings: [
        OLD_MODEL,
        `${path.join(dir, 'my-env.yaml')} does not include a python version specification. Using the current python version 3.10.4.`,
        "The following conda dependencies will not be installed in the resulting environment: ['python=3.8.*']",
      ],
    },
    'the mlflow < 2.0 string form names the conda file',
  )
})

t.test('readEnvSpec: the env dict names the files', async (t) => {
  const dir = t.testdir({envs: {'py.yaml': 'python: "3.10"\n', 'c.yaml': 'dependencies: []\n'}})
  const spec = await readEnvSpec(dir, {conda: 'envs/c.yaml', virtualenv: 'envs/py.yaml'}, '3.12.1')
  t.match(spec, {python: '3.10', source: 'envs/py.yaml', condaYamlPath: path.join(dir, 'envs/c.yaml'), warnings: []})
})

t.test('readEnvSpec: an env dict without `virtualenv` falls back to conda.yaml (mlflow: KeyError)', async (t) => {
  const dir = t.testdir({...GOLDEN, 'requirements.txt': 'mlflow==2.8.1\n'})
  const spec = await readEnvSpec(dir, {conda: 'conda.yaml'}, '3.12.1')
  t.same(spec.dependencies, ['-r requirements.txt'], 'python_env.yaml is not read: MLmodel does not name it')
  t.equal(spec.source, 'conda.yaml + requirements.txt')
  t.equal(spec.python, '3.9.13')
  t.same(spec.warnings, [
    "MLmodel's python_function env names no virtualenv file (mlflow's virtualenv and uv managers fail here with KeyError: 'virtualenv'); reading conda.yaml instead.",
  ])
  t.match(await readEnvSpec(dir, {}, '3.12.1'), {source: 'conda.yaml + requirements.txt'}, 'an empty dict: conda.yaml, no python env file')
})

t.test('readEnvSpec: no python_env.yaml and no conda.yaml is ENV_SPEC_INVALID', async (t) => {
  const dir = t.testdir({'requirements.txt': 'numpy\n'})
  await t.rejects(readEnvSpec(dir, ENV_DICT, '3.12.1'), {
    code: 'ENV_SPEC_INVALID',
    exitCode: 17,
    message: `The model has no environment spec: ${path.join(dir, 'conda.yaml')} does not exist, nor does ${path.join(dir, 'python_env.yaml')}.`,
  })
  await t.rejects(readEnvSpec(dir, {conda: 'conda.yaml'}, '3.12.1'), {message: /MLmodel names no python env file\.$/})
})

t.test('readEnvSpec: invalid files are reported with their path', async (t) => {
  const dir = t.testdir({'python_env.yaml': 'python: 3.10\n', 'conda.yaml': 'dependencies: [python]\n'})
  await t.rejects(readEnvSpec(dir, undefined, '3.12.1'), {
    code: 'ENV_SPEC_INVALID',
    message: "`python` must be a string but got <class 'float'>",
  })
  await t.rejects(readEnvSpec(dir, {conda: 'conda.yaml'}, '3.12.1'), {
    message: 'Invalid dependency for python: python. It must be pinned (e.g. python=3.8.13).',
  })
  const unreadable = t.testdir({'python_env.yaml': {}})
  await t.rejects(readEnvSpec(unreadable, undefined, '3.12.1'), {
    code: 'ENV_SPEC_INVALID',
    message: /python_env\.yaml is a directory: mlserve reads only regular files/,
  })
})

t.test('python_env.yaml and conda.yaml: alias bombs are refused, and messages never print an unbounded value', async (t) => {
  const bombed = model(t, {'python_env.yaml': `python: "3.11"\n${BOMB.join('\n')}\ndependencies: *i\n`})
  await t.rejects(readEnvSpec(bombed, undefined, '3.11'), {
    code: 'ENV_SPEC_INVALID',
    message: /python_env\.yaml: the document expands to more than/,
  })
  const conda = model(t, {'conda.yaml': `${BOMB.join('\n')}\ndependencies: [python=3.11, *i]\n`})
  await t.rejects(readEnvSpec(conda, {conda: 'conda.yaml'}, '3.11'), {code: 'ENV_SPEC_INVALID', message: /conda\.yaml: the document expands/})

  // Under the bound, but still a value that prints as megabytes: the message stays short.
  const wide = model(t, {
    'python_env.yaml': `python: "3.11"\ndependencies:\n- [${Array.from({length: 50_000}, () => '"abcdefghij"').join(', ')}]\n`,
  })
  const error = (await readEnvSpec(wide, undefined, '3.11').catch((error_: unknown) => error_)) as Error
  t.match(error, {code: 'ENV_SPEC_INVALID', message: /^`dependencies` must be a list of strings but has \['abcdefghij', /})
  t.ok(error.message.length < 2200, `the message is bounded (${error.message.length} characters)`)

  const fifo = model(t, {}, {fifos: ['python_env.yaml']})
  await t.rejects(readEnvSpec(fifo, undefined, '3.11'), {code: 'ENV_SPEC_INVALID', message: /python_env\.yaml is a FIFO/})
})
