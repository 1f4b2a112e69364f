// Writes serve's flag table into docs/flags.md between its markers, from the built flag declarations (npm run docs:flags).
import {readFileSync, writeFileSync} from 'node:fs'

import {flagTable, withFlagTable} from '../dist/cli/flag-reference.js'
import {serveFlags} from '../dist/cli/serve-flags.js'

const file = new URL('../docs/flags.md', import.meta.url)
const page = readFileSync(file, 'utf8')
const next = withFlagTable(page, flagTable(serveFlags))
if (next === undefined) throw new Error('docs/flags.md has no flags:serve markers')
if (next !== page) writeFileSync(file, next)
process.stdout.write(next === page ? 'docs/flags.md: the flag table is up to date\n' : 'docs/flags.md: the flag table was regenerated\n')
