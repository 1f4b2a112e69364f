// tap `before` script: provisions the Python test toolchain and the fixture models once, before any
// test file runs (the files then only read them).
import {ensureFixtures} from './helpers/toolchain.js'

ensureFixtures('main')
ensureFixtures('legacy')
