// tap `before` script: provisions what the suite needs once, before any test file runs (the files then
// only read it): R from Debian for the crate-model tests, Docker, Chromium for the page tests, the Python
// test toolchain and the fixture models.
import {execFileSync} from 'node:child_process'

import {ensureFixtures} from './helpers/toolchain.js'

/** The Debian packages mlserve's R scorer needs (as its R_NOT_FOUND message names them). */
const R_PACKAGES = ['r-base-core', 'r-cran-httpuv', 'r-cran-jsonlite']

function hasR(): boolean {
  try {
    execFileSync('Rscript', ['-e', 'quit(status = !all(vapply(c("httpuv", "jsonlite"), requireNamespace, logical(1), quietly = TRUE)))'], {
      stdio: 'ignore',
    })
    return true
  } catch {
    return false
  }
}

function ensureR(): void {
  if (hasR()) return
  if (process.getuid?.() !== 0) {
    throw new Error(
      `The crate-model tests need R: run \`apt-get install -y --no-install-recommends ${R_PACKAGES.join(' ')}\` as root, then the tests again.`,
    )
  }

  const env = {...process.env, DEBIAN_FRONTEND: 'noninteractive'}
  execFileSync('apt-get', ['update'], {stdio: 'inherit', env})
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...R_PACKAGES], {stdio: 'inherit', env})
}

/** What the image tests need: Docker from Debian (dockerd, the docker CLI) and debootstrap for the local base image. */
const DOCKER_PACKAGES = ['docker.io', 'debootstrap']

function hasCommand(command: string): boolean {
  try {
    execFileSync('sh', ['-c', `command -v ${command}`], {
      stdio: 'ignore',
      env: {...process.env, PATH: `${process.env.PATH ?? ''}:/usr/sbin:/sbin`},
    })
    return true
  } catch {
    return false
  }
}

function ensureDocker(): void {
  if (['dockerd', 'docker', 'debootstrap'].every((command) => hasCommand(command))) return
  if (process.getuid?.() !== 0) {
    throw new Error(
      `The image tests need Docker and debootstrap: run \`apt-get install -y --no-install-recommends ${DOCKER_PACKAGES.join(' ')}\` as root, then the tests again.`,
    )
  }

  const env = {...process.env, DEBIAN_FRONTEND: 'noninteractive'}
  execFileSync('apt-get', ['update'], {stdio: 'inherit', env})
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', ...DOCKER_PACKAGES], {stdio: 'inherit', env})
}

/** The page tests' browser: Chromium from Debian (playwright-core drives it; nothing is downloaded). */
function ensureChromium(): void {
  if (process.env.MLSERVE_CHROMIUM || hasCommand('chromium')) return
  if (process.getuid?.() !== 0) {
    throw new Error('The page tests need Chromium: run `apt-get install -y --no-install-recommends chromium` as root, then the tests again.')
  }

  const env = {...process.env, DEBIAN_FRONTEND: 'noninteractive'}
  execFileSync('apt-get', ['update'], {stdio: 'inherit', env})
  execFileSync('apt-get', ['install', '-y', '--no-install-recommends', 'chromium'], {stdio: 'inherit', env})
}

ensureR()
ensureDocker()
ensureChromium()
ensureFixtures('main')
ensureFixtures('legacy')
