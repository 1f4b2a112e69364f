// The page to try the model (GET /ui) of `mlserve serve` in a real headless Chromium against the real scorer: it loads,
// shows the signature, the button gets the model's real prediction and a bad input MLflow's error
// message, the live state comes from /metrics; with an API key and under --static-prefix; several models.
import {chmodSync, mkdtempSync, rmSync, writeFileSync} from 'node:fs'
import {tmpdir} from 'node:os'
import path from 'node:path'

import t from 'tap'

import {launchBrowser, openPage, screenshotPath} from '../helpers/browser.js'
import {startMlserve} from '../helpers/servers.js'
import {fixtureModel} from '../helpers/toolchain.js'

const dir = mkdtempSync(path.join(tmpdir(), 'mlserve-page-'))
t.teardown(() => rmSync(dir, {recursive: true, force: true}))
const BAD = '{"dataframe_split": {"columns": ["no_such_column"], "data": [[1]]}}'
const KEY = 'page-test-key-0123456789'

async function invoke(url: string, body: string, headers: Record<string, string> = {}) {
  const res = await fetch(`${url}/invocations`, {method: 'POST', headers: {'content-type': 'application/json', ...headers}, body})
  return {status: res.status, json: (await res.json()) as {predictions?: unknown; message?: string}}
}

t.test('iris: the model, its signature, a real prediction, an error, the live state', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('iris')])
  t.teardown(() => server.stop())
  await server.waitForOutput(/ready: serving .* try it at (http:\/\/\S+\/ui)/)
  const browser = await launchBrowser(t)
  const {page, cspErrors} = await openPage(browser)
  const res = await page.goto(`${server.url}/ui`)
  t.equal(res?.status(), 200)
  t.match(res?.headers()['content-security-policy'], /default-src 'none'; script-src 'sha256-/)

  await page.locator('#signature table').first().waitFor()
  const inputs = await page.locator('#signature table').first().locator('tbody tr').allInnerTexts()
  t.match(inputs.join('\n'), /sepal_length\s+double\s+required/, 'the signature table names the columns and their types')
  t.equal(await page.locator('#model-uri').innerText(), 'iris', 'a local model is named by its directory only')
  t.match(
    await page.locator('#model-flavor').innerText(),
    /^python_function, sklearn \(served as pyfunc\)$|^sklearn, python_function \(served as pyfunc\)$/,
  )
  const example = await page.locator('#input').inputValue()
  t.ok(JSON.parse(example), 'the serving input example is in the box')

  const direct = await invoke(server.url, example)
  t.equal(direct.status, 200)
  await page.locator('#predict').click()
  await page.locator('#took', {hasText: /^200 in \d+\.\d ms$/}).waitFor()
  t.same(JSON.parse(await page.locator('#answer').innerText()), direct.json, "the button gets the model's real prediction")

  await page.locator('#input').fill(BAD)
  await page.locator('#predict').click()
  await page.locator('#took', {hasText: /^400 in/}).waitFor()
  const bad = await invoke(server.url, BAD)
  t.equal(bad.status, 400)
  t.equal(await page.locator('#error').textContent(), bad.json.message, "a bad input shows MLflow's error message")

  await page.locator('#live-requests', {hasText: /\([1-9]\d* to \/invocations\)/}).waitFor()
  t.match(await page.locator('#live-scorers').innerText(), /^1 ready, 0 starting/)
  t.match(await page.locator('#live-p50').innerText(), /^\d+\.\d ms$/, 'p50 from the histogram')
  await page.screenshot({path: screenshotPath('try-page-iris.png'), fullPage: true})
  t.same(cspErrors, [], 'nothing blocked by the Content-Security-Policy')
})

t.test('with an API key and under --static-prefix: the page is public, the model needs the key', async (t) => {
  const keys = path.join(dir, 'keys.txt')
  writeFileSync(keys, `${KEY}\n`)
  chmodSync(keys, 0o600)
  const server = await startMlserve(['-m', fixtureModel('iris'), '--auth-token-file', keys, '--static-prefix', '/team/iris'])
  t.teardown(() => server.stop())
  t.match(server.url, /\/team\/iris$/)
  const html = await fetch(`${server.url}/ui`)
  t.equal(html.status, 200, 'the page needs no key')
  t.notMatch(await html.text(), /iris|sepal|petal/, 'and holds nothing of the model')
  t.equal((await fetch(`${server.url}/openapi.model.json`)).status, 401, 'what it reads does')

  const browser = await launchBrowser(t)
  const {page, requests, cspErrors} = await openPage(browser)
  await page.goto(`${server.url}/ui`)
  await page.locator('#notice', {hasText: /needs an API key/}).waitFor()
  await page.locator('#live-when', {hasText: /needs the API key/}).waitFor()
  await page.locator('#api-key').fill(KEY)
  await page.locator('#key-form button').click()
  await page.locator('#signature table').first().waitFor()
  const example = await page.locator('#input').inputValue()
  const direct = await invoke(server.url, example, {'x-api-key': KEY})
  await page.locator('#predict').click()
  await page.locator('#took', {hasText: /^200 in/}).waitFor()
  t.same(JSON.parse(await page.locator('#answer').innerText()), direct.json, 'the prediction, with the key')
  await page.locator('#live-scorers', {hasText: /1 ready/}).waitFor()
  await page.screenshot({path: screenshotPath('try-page-key-prefix.png'), fullPage: true})
  const origin = new URL(server.url).origin
  t.same(
    requests.filter((url) => !url.startsWith(`${server.url}/`)),
    [],
    `every request goes under the prefix (${origin}/team/iris/...)`,
  )
  t.same(cspErrors, [])
})

t.test('several models: the page lets the user pick one', async (t) => {
  const server = await startMlserve(['-m', fixtureModel('sum'), '-m', fixtureModel('iris')])
  t.teardown(() => server.stop())
  await server.waitForOutput(/ready: serving 2 of 2 models/)
  const browser = await launchBrowser(t)
  const {page} = await openPage(browser)
  await page.goto(`${server.url}/ui`)
  await page.locator('#model-pick').waitFor()
  t.same(await page.locator('#model-select option').allInnerTexts(), ['sum (loaded)', 'iris (loaded)'])
  await page.locator('#signature table').first().waitFor()
  t.match((await page.locator('#signature table').first().locator('tbody tr').allInnerTexts()).join('\n'), /^a\s+long\s+required\nb\s+long/)
  await page.locator('#model-select').selectOption('iris')
  await page.locator('#signature', {hasText: 'sepal_length'}).waitFor()
  const example = await page.locator('#input').inputValue()
  const direct = await invoke(`${server.url}/models/iris`, example)
  await page.locator('#predict').click()
  await page.locator('#took', {hasText: /^200 in/}).waitFor()
  t.same(JSON.parse(await page.locator('#answer').innerText()), direct.json, "the picked model's prediction")
  t.equal(await page.locator('#invocations-path').innerText(), '/models/iris/invocations')
})
