// The docs cannot rot: every `sh` block of README.md and docs/*.md is run here as written (cheap commands
// only) or names, in a `<!-- run-by: ... -->` line before its fence, the file that runs it, which must
// exist and mention the block's mlserve subcommand and every --flag it uses (docs/development.md).
import {execFileSync} from 'node:child_process'
import {existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {MLSERVE_BIN} from '../helpers/servers.js'
import {REPO_ROOT} from '../helpers/toolchain.js'

interface Block {
  readonly file: string
  readonly line: number
  readonly runBy: readonly string[]
  readonly commands: readonly string[]
}

/** The `sh` blocks of a markdown text, each with its run-by paths and its commands (continuations joined, comments dropped). */
export function shBlocks(file: string, text: string): Block[] {
  const lines = text.split('\n')
  const blocks: Block[] = []
  for (let i = 0; i < lines.length; i++) {
    const fence = /^(`{3,}|~{3,})\s*(\S*)/.exec(lines[i]!)
    if (!fence) continue
    const end = lines.findIndex((line, j) => j > i && line.startsWith(fence[1]!))
    const body = lines.slice(i + 1, end < 0 ? lines.length : end)
    if (fence[2] === 'sh') {
      const runBy = /^<!--\s*run-by:\s*(.+?)\s*-->\s*$/.exec(lines[i - 1] ?? '')?.[1]?.split(/\s+/) ?? []
      const commands = body
        .join('\n')
        .replaceAll(/\s*\\\n\s*/g, ' ')
        .split('\n')
        .map((line) => line.replace(/(^|\s)#.*$/, '').trim())
        .filter(Boolean)
      blocks.push({file, line: i + 1, runBy, commands})
    }

    i = end < 0 ? lines.length : end
  }

  return blocks
}

const COMMAND_IDS = Object.keys(
  (JSON.parse(readFileSync(path.join(REPO_ROOT, 'oclif.manifest.json'), 'utf8')) as {commands: Record<string, unknown>}).commands,
).map((id) => id.split(':'))

/** Each mlserve call of a command line: its subcommand (e.g. ['env', 'list']; [] for none) and its arguments. */
export function mlserveCalls(command: string): Array<{subcommand: string[]; args: string[]}> {
  return [...command.matchAll(/(?:^|[;&|(]\s*)mlserve(?=\s|$)([^;&|)]*)/g)].map((match) => {
    const args = match[1]!.trim().split(/\s+/).filter(Boolean)
    const subcommand = COMMAND_IDS.filter((id) => id.every((word, k) => args[k] === word)).sort((a, b) => b.length - a.length)[0] ?? []
    return {subcommand, args: args.slice(subcommand.length)}
  })
}

export const flagsOf = (command: string): string[] => [...new Set([...command.matchAll(/(?:^|\s)(--[a-z][a-z0-9-]*)/g)].map((m) => m[1]!))]

/** Whether the docs test may run a command itself: only mlserve calls that read or print and start nothing. */
export function isCheap(command: string): boolean {
  const calls = mlserveCalls(command)
  if (calls.length === 0 || command.replaceAll(/(?:^|[;&|(]\s*)mlserve(?=\s|$)[^;&|)]*/g, '').replaceAll(/[\s&|;]/g, '') !== '') return false
  return calls.every(
    ({subcommand, args}) => args.includes('--help') || (subcommand.join(' ') === 'env list' && args.every((a) => a === '--json')),
  )
}

const mentions = (text: string, word: string) =>
  new RegExp(`(^|[^a-z0-9-])${word.replaceAll(/[.*+?^${}()|[\]\\]/g, '\\$&')}($|[^a-z0-9-])`).test(text)

/** What is wrong with a block that names the files running it (empty: nothing). */
export function runByProblems(block: Block, root = REPO_ROOT): string[] {
  const problems: string[] = []
  const texts: string[] = []
  for (const name of block.runBy) {
    const file = path.join(root, name)
    if (!existsSync(file)) problems.push(`run-by names ${name}, which does not exist`)
    else texts.push(readFileSync(file, 'utf8'))
  }

  if (problems.length > 0) return problems
  if (block.runBy.includes('package.json')) {
    const {scripts} = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as {scripts: Record<string, string>}
    for (const command of block.commands) {
      for (const part of command.split(/\s*&&\s*/)) {
        const words = part.split(/\s+/)
        if (words[0] === 'npm' && words[1] === 'run' && !(words[2]! in scripts))
          problems.push(`\`${part}\`: package.json has no script ${words[2]}`)
        else if (words[0] === 'npx' && words[1] === 'tap') {
          for (const target of words.slice(2).filter((w) => !w.startsWith('-'))) {
            if (!existsSync(path.join(root, target))) problems.push(`\`${part}\`: ${target} does not exist`)
          }
        } else if (!(words[0] === 'npm' && ['ci', 'test', 'run'].includes(words[1]!)))
          problems.push(`\`${part}\` is not an npm script or npx tap`)
      }
    }

    return problems
  }

  const all = texts.join('\n')
  const isTest = block.runBy.every((name) => name.endsWith('.test.ts'))
  for (const command of block.commands) {
    if (!isTest && !all.includes(command)) problems.push(`\`${command}\` is not in ${block.runBy.join(', ')} as written`)
    for (const {subcommand} of mlserveCalls(command)) {
      for (const word of subcommand)
        if (!mentions(all, word)) problems.push(`${block.runBy.join(', ')} never mentions the subcommand ${subcommand.join(' ')}`)
    }

    for (const flag of flagsOf(command))
      if (!mentions(all, flag)) problems.push(`${block.runBy.join(', ')} never mentions ${flag} (\`${command}\`)`)
  }

  return problems
}

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to dashes. */
export const slugOf = (heading: string): string =>
  heading
    .toLowerCase()
    .replaceAll(/[^\p{L}\p{N} _-]/gu, '')
    .replaceAll(' ', '-')

/** The relative links of a page (and their anchors) that lead nowhere. */
export function brokenLinks(page: string, root = REPO_ROOT): string[] {
  const text = readFileSync(path.join(root, page), 'utf8').replaceAll(/^(`{3,}).*\n[\s\S]*?^\1\s*$/gm, '')
  const broken: string[] = []
  for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
    if (/^[a-z]+:/.test(target!)) continue
    const [file, anchor] = target!.split('#') as [string, string | undefined]
    const resolved = file === '' ? path.join(root, page) : path.join(root, path.dirname(page), file)
    if (!existsSync(resolved)) {
      broken.push(`${target}: no such file`)
      continue
    }

    if (anchor === undefined || !resolved.endsWith('.md')) continue
    const headings = [...readFileSync(resolved, 'utf8').matchAll(/^#{1,6} (.+)$/gm)].map((m) => slugOf(m[1]!))
    if (!headings.includes(anchor)) broken.push(`${target}: no heading with that anchor`)
  }

  return broken
}

/** README.md and every docs/*.md page. */
const pages = [
  'README.md',
  ...readdirSync(path.join(REPO_ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
]

t.test('every sh block of README.md and docs/*.md is run here or by the file its run-by names', async (t) => {
  const home = mkdtempSync(path.join(tmpdir(), 'mlserve-docs-'))
  t.teardown(() => rmSync(home, {recursive: true, force: true}))
  const env = {
    ...process.env,
    HOME: home,
    XDG_CACHE_HOME: path.join(home, '.cache'),
    MLSERVE_ENV_ROOT: path.join(home, 'envs'),
    MLSERVE_MODEL_ROOT: path.join(home, 'models'),
  }
  let count = 0
  for (const page of pages) {
    for (const block of shBlocks(page, readFileSync(path.join(REPO_ROOT, page), 'utf8'))) {
      count++
      const where = `${page}:${block.line}`
      if (block.runBy.length > 0) {
        t.same(runByProblems(block), [], `${where}: run by ${block.runBy.join(', ')}`)
        continue
      }

      for (const command of block.commands) {
        if (!isCheap(command)) {
          t.fail(
            `${where}: \`${command}\` is not run by this test (only --help and env list are): put <!-- run-by: test/<path>.test.ts --> before the fence`,
          )
          continue
        }

        const runnable = command.replaceAll(
          /(^|[;&|(]\s*)mlserve(?=\s|$)/g,
          `$1${JSON.stringify(process.execPath)} ${JSON.stringify(MLSERVE_BIN)}`,
        )
        t.doesNotThrow(
          () => execFileSync('sh', ['-c', runnable], {cwd: REPO_ROOT, env, stdio: 'pipe', timeout: 60_000}),
          `${where}: \`${command}\` exits 0`,
        )
      }
    }
  }

  t.ok(count > 10, `the pages hold sh blocks (${count})`)
})

t.test('every relative link of README.md and docs/*.md leads to a file, and its anchor to a heading there', async (t) => {
  for (const page of pages) t.same(brokenLinks(page), [], page)
  t.equal(slugOf('Preload (`--preload`)'), 'preload---preload')
  t.equal(slugOf("The newcomer's journey, measured"), 'the-newcomers-journey-measured')

  const root = mkdtempSync(path.join(tmpdir(), 'mlserve-links-'))
  t.teardown(() => rmSync(root, {recursive: true, force: true}))
  mkdirSync(path.join(root, 'docs'))
  writeFileSync(path.join(root, 'docs/a.md'), '# A page\n\n## Start-up\n')
  writeFileSync(
    path.join(root, 'README.md'),
    '[ok](docs/a.md#start-up) [gone](docs/b.md) [bad](docs/a.md#nosuch) [self](#a-page)\n```text\n[x](nowhere.md)\n```\n',
  )
  t.same(brokenLinks('README.md', root), [
    'docs/b.md: no such file',
    'docs/a.md#nosuch: no heading with that anchor',
    '#a-page: no heading with that anchor',
  ])
})

t.test('the checker refuses what would let the docs rot', async (t) => {
  const blocks = (text: string) => shBlocks('x.md', text)
  t.same(blocks('<!-- run-by: a.test.ts b.test.ts -->\n```sh\nmlserve serve \\\n  --batch # merge\n# only a comment\n```\n')[0], {
    file: 'x.md',
    line: 2,
    runBy: ['a.test.ts', 'b.test.ts'],
    commands: ['mlserve serve --batch'],
  })
  t.same(blocks('```text\nmlserve serve\n```\n```json\n{}\n```\n'), [], 'only sh blocks')
  t.same(mlserveCalls('cd x && mlserve env list --json'), [{subcommand: ['env', 'list'], args: ['--json']}])
  t.ok(isCheap('mlserve serve --help'))
  t.ok(isCheap('mlserve --help'))
  t.notOk(isCheap('mlserve serve -m examples/sklearn-iris'), 'serving is not cheap')
  t.notOk(isCheap('curl http://127.0.0.1:5000/ping'), 'a command that is not mlserve')
  t.notOk(isCheap('mlserve env list && rm -rf x'), 'a cheap call beside another command')

  const block = (runBy: string[], ...commands: string[]): Block => ({file: 'x.md', line: 1, runBy, commands})
  t.match(runByProblems(block(['test/e2e/nosuch.test.ts'], 'mlserve serve')), [/does not exist/])
  t.match(runByProblems(block(['test/e2e/install.test.ts'], 'mlserve smoke --junit x.xml')), [/subcommand smoke/, /--junit/])
  t.same(runByProblems(block(['test/e2e/install.test.ts'], 'mlserve serve -m examples/sklearn-iris')), [])
  t.match(runByProblems(block(['.ci/run'], 'npm test && npm ci')), [/not in \.ci\/run as written/])
  t.same(runByProblems(block(['.ci/run'], 'npm ci && npm test && npm run test:cluster')), [])
  t.match(runByProblems(block(['package.json'], 'npm run nosuch', 'npx tap test/nosuch')), [/no script nosuch/, /does not exist/])
})
