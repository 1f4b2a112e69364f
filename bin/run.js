#!/usr/bin/env node
// The mlserve executable: hands argv to oclif, which loads commands from oclif.manifest.json.
import {execute} from '@oclif/core'

await execute({dir: import.meta.url})
