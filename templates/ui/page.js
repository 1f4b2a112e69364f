// mlserve's page to try the model: reads the model's document and /metrics with the key typed on the page, posts to /invocations.
'use strict'
;(() => {
  const $ = (id) => document.getElementById(id)
  // Every URL is relative to where the page is served: /ui under --static-prefix /p is /p/ui.
  const base = location.pathname.replace(/\/ui\/?$/, '')
  let modelBase = base
  let modelName
  let key = ''

  const headers = (extra) => (key ? {...extra, authorization: `Bearer ${key}`} : {...extra})
  const notice = (text) => {
    $('notice').textContent = text
  }

  const nameOf = (uri) => /^models:\/([^/@]+)/.exec(uri)?.[1] ?? uri.replace(/\/+$/, '').split('/').pop()

  async function getJson(path) {
    const res = await fetch(path, {headers: headers(), cache: 'no-store'})
    const text = await res.text()
    let body
    try {
      body = JSON.parse(text)
    } catch {
      body = undefined
    }

    return {status: res.status, body, text}
  }

  function cell(row, text) {
    const td = document.createElement('td')
    td.textContent = text
    row.append(td)
  }

  function table(caption, rows, columns) {
    const element = document.createElement('table')
    element.createCaption().textContent = caption
    const head = element.createTHead().insertRow()
    for (const [title] of columns) {
      const th = document.createElement('th')
      th.textContent = title
      head.append(th)
    }

    const body = element.createTBody()
    for (const row of rows) {
      const tr = body.insertRow()
      for (const [, valueOf] of columns) cell(tr, valueOf(row))
    }

    return element
  }

  /** JSON indented by object, arrays of plain values on one line (rows stay rows); only the newlines JSON.stringify added are touched. */
  const pretty = (value) =>
    JSON.stringify(value, null, 2).replace(/\[\n\s+([^[\]{}]*?)\n\s*\]/g, (_, inner) => `[${inner.split(/,\n\s*/).join(', ')}]`)
  const shown = (value) => (value === undefined ? '' : JSON.stringify(value))
  const need = (row) => (row.shape ? `shape ${JSON.stringify(row.shape)}` : row.required === false ? 'optional' : 'required')

  function showSignature(signature) {
    const target = $('signature')
    target.replaceChildren()
    const columns = [
      ['name', (row) => row.name ?? '(unnamed)'],
      ['type', (row) => row.type],
      ['', need],
    ]
    if (signature.inputs) target.append(table('inputs', signature.inputs, columns))
    else target.append(Object.assign(document.createElement('p'), {textContent: 'This model has no signature: any input goes.'}))
    if (signature.outputs) target.append(table('outputs', signature.outputs, columns))
    if (signature.params.length > 0) {
      const params = [
        ['name', (row) => row.name],
        ['type', (row) => row.type],
        ['default', (row) => shown(row.default)],
      ]
      target.append(table('params', signature.params, params))
    }
  }

  function showModel(document_) {
    const model = document_['x-mlserve-model']
    $('model-name').textContent = modelName ?? nameOf(model.uri)
    $('model-uri').textContent = model.uri
    const version = model.version ?? (model.run_id ? `run ${model.run_id}` : 'not versioned')
    $('model-version').textContent = `${version} (generation ${model.generation})`
    $('model-flavor').textContent = `${model.flavors.join(', ')} (served as ${model.flavor})`
    showSignature(model.signature)
    const example = document_.paths['/invocations'].post.requestBody.content['application/json'].example
    if (!$('input').dataset.edited) $('input').value = example === undefined ? '' : pretty(example)
    $('invocations-path').textContent = `${modelBase}/invocations`
  }

  async function loadModel() {
    const {status, body, text} = await getJson(`${modelBase}/openapi.model.json`)
    if (status === 401) return notice(`This server needs an API key: type it above. (${body?.message ?? text})`)
    if (status !== 200 || !body?.['x-mlserve-model']) {
      notice(`The model is not ready yet (${status}); trying again in 2 s.`)
      setTimeout(loadModel, 2000)
      return
    }

    notice('')
    showModel(body)
  }

  async function pickModel() {
    const ready = await getJson(`${base}/readyz`)
    const models = ready.body?.models
    if (!Array.isArray(models)) return loadModel()
    // Several models (multi-model serve): pick one; each has its routes under /models/<name>.
    const select = $('model-select')
    if (select.options.length === 0) {
      for (const model of models) select.add(new Option(`${model.name} (${model.state})`, model.name))
      select.addEventListener('change', () => {
        $('input').dataset.edited = ''
        void choose(select.value)
      })
      $('model-pick').hidden = false
    }

    return choose(select.value)
  }

  async function choose(name) {
    modelName = name
    modelBase = `${base}/models/${encodeURIComponent(name)}`
    await loadModel()
  }

  async function predict() {
    const button = $('predict')
    button.disabled = true
    $('error').hidden = true
    $('answer').textContent = ''
    $('took').textContent = 'waiting…'
    const began = performance.now()
    try {
      const res = await fetch(`${modelBase}/invocations`, {
        method: 'POST',
        headers: headers({'content-type': $('content-type').value}),
        body: $('input').value,
      })
      const text = await res.text()
      const ms = performance.now() - began
      $('took').textContent = `${res.status} in ${ms.toFixed(1)} ms`
      let body
      try {
        body = JSON.parse(text)
      } catch {
        body = undefined
      }

      if (res.ok) {
        $('answer').textContent = body === undefined ? text : pretty(body)
      } else {
        $('error').hidden = false
        $('error').textContent = body?.message ?? body?.detail ?? text
        $('answer').textContent = text
      }
    } catch (error) {
      $('took').textContent = ''
      $('error').hidden = false
      $('error').textContent = `The request failed: ${error}`
    } finally {
      button.disabled = false
      void refreshLive()
    }
  }

  /** Prometheus text: each sample as [name, labels, value]. */
  function samples(text) {
    const out = []
    for (const line of text.split('\n')) {
      const match = /^([a-z_]+)(?:\{(.*)\})? (\S+)$/.exec(line)
      if (!match) continue
      const labels = {}
      for (const [, name, value] of (match[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[name] = value
      out.push([match[1], labels, Number(match[3])])
    }

    return out
  }

  /** The median from a histogram's cumulative buckets, interpolated within its bucket (as Prometheus does). */
  function median(buckets) {
    const sorted = buckets.filter(([le]) => le !== Infinity).sort((a, b) => a[0] - b[0])
    const total = buckets.find(([le]) => le === Infinity)?.[1] ?? 0
    if (total === 0) return undefined
    let lower = 0
    let below = 0
    for (const [le, count] of sorted) {
      if (count >= total / 2) return lower + ((le - lower) * (total / 2 - below)) / Math.max(count - below, 1)
      lower = le
      below = count
    }

    return lower
  }

  async function refreshLive() {
    try {
      const res = await fetch(`${base}/metrics`, {headers: headers(), cache: 'no-store'})
      if (res.status === 401) {
        $('live-when').textContent = '(/metrics needs the API key)'
        return
      }

      const all = samples(await res.text())
      const mine = (labels) => modelName === undefined || labels.model === modelName
      const sum = (name, keep = () => true) => all.filter(([n, l]) => n === name && keep(l)).reduce((total, [, , v]) => total + v, 0)
      const scorers = (state) => sum('mlserve_scorers', (l) => l.state === state)
      $('live-scorers').textContent = `${scorers('ready')} ready, ${scorers('starting')} starting, ${scorers('retiring')} retiring`
      const invocations = sum('mlserve_http_requests_total', (l) => l.route === '/invocations' && mine(l))
      $('live-requests').textContent = `${sum('mlserve_http_requests_total')} (${invocations} to /invocations)`
      const buckets = all
        .filter(([n, l]) => n === 'mlserve_http_request_duration_seconds_bucket' && l.route === '/invocations' && mine(l))
        .map(([, l, v]) => [l.le === '+Inf' ? Infinity : Number(l.le), v])
      const p50 = median(buckets)
      $('live-p50').textContent = p50 === undefined ? 'no requests yet' : `${(p50 * 1000).toFixed(1)} ms`
      $('live-when').textContent = `(at ${new Date().toLocaleTimeString()})`
    } catch (error) {
      $('live-when').textContent = `(/metrics: ${error})`
    }
  }

  $('key-form').addEventListener('submit', (event) => {
    event.preventDefault()
    key = $('api-key').value.trim()
    void pickModel()
    void refreshLive()
  })
  $('input').addEventListener('input', () => {
    $('input').dataset.edited = 'yes'
  })
  $('predict').addEventListener('click', () => void predict())
  void pickModel()
  void refreshLive()
  setInterval(() => void refreshLive(), 2000)
})()
