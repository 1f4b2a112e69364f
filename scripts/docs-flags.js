// Writes serve's flag table into README.md between its markers, from the built flag declarations (npm run docs:flags).
import {readFileSync, writeFileSync} from 'node:fs'

import {flagTable, withFlagTable} from '../dist/cli/flag-reference.js'
import {serveFlags} from '../dist/cli/serve-flags.js'

const file = new URL('../README.md', import.meta.url)
const readme = readFileSync(file, 'utf8')
const next = withFlagTable(readme, flagTable(serveFlags))
if (next === undefined) throw new Error('README.md has no flags:serve markers')
if (next !== readme) writeFileSync(file, next)
process.stdout.write(next === readme ? 'README.md: the flag table is up to date\n' : 'README.md: the flag table was regenerated\n')
