// A real headless Chromium for the page tests: Debian's /usr/bin/chromium (test/setup.ts installs it), driven
// by playwright-core; nothing is downloaded. Every wait is bounded and the browser is closed in teardown.
import {mkdirSync} from 'node:fs'
import path from 'node:path'

import {chromium, type Browser, type Page} from 'playwright-core'
import {type Test} from 'tap'

import {REPO_ROOT} from './toolchain.js'

/** Where Chromium is: MLSERVE_CHROMIUM, else Debian's package. */
export const CHROMIUM = process.env.MLSERVE_CHROMIUM ?? '/usr/bin/chromium'

/** Where the page tests keep their screenshots (gitignored; docs/development.md names it). */
export const ARTIFACTS_DIR = path.join(REPO_ROOT, 'test', 'artifacts')

/** Playwright's own waits (launch, clicks, selectors): generous, never unbounded. */
const WAIT_MS = 30_000

export async function launchBrowser(t: Test): Promise<Browser> {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    timeout: 60_000,
    // Root in a container has no user namespace for Chromium's sandbox.
    args: process.getuid?.() === 0 ? ['--no-sandbox'] : [],
  })
  t.teardown(async () => browser.close())
  return browser
}

/** A new page with bounded waits that records the console's Content-Security-Policy complaints. */
export async function openPage(browser: Browser): Promise<{page: Page; cspErrors: string[]; requests: string[]}> {
  const context = await browser.newContext({viewport: {width: 1280, height: 900}})
  context.setDefaultTimeout(WAIT_MS)
  const page = await context.newPage()
  const cspErrors: string[] = []
  const requests: string[] = []
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) cspErrors.push(message.text())
  })
  page.on('request', (request) => requests.push(request.url()))
  return {page, cspErrors, requests}
}

export function screenshotPath(name: string): string {
  mkdirSync(ARTIFACTS_DIR, {recursive: true})
  return path.join(ARTIFACTS_DIR, name)
}
