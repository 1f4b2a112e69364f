// Prometheus text exposition, pure: counters, gauges and histograms rendered exactly, escaping, misuse.
import t from 'tap'

import {DEFAULT_BUCKETS, PROMETHEUS_CONTENT_TYPE, Registry, formatValue} from '../../../src/proxy/metrics.js'

t.test('counter, gauge and histogram render exactly, in registration and first-seen order', async (t) => {
  const registry = new Registry()
  const requests = registry.counter('mlserve_requests_total', 'Requests answered.', ['method', 'code'])
  const inFlight = registry.gauge('mlserve_scorers_ready', 'Scorers ready.')
  const latency = registry.histogram('mlserve_request_duration_seconds', 'Request latency.', ['route'], [0.1, 1])
  t.equal(
    registry.render(),
    [
      '# HELP mlserve_requests_total Requests answered.',
      '# TYPE mlserve_requests_total counter',
      '# HELP mlserve_scorers_ready Scorers ready.',
      '# TYPE mlserve_scorers_ready gauge',
      'mlserve_scorers_ready 0',
      '# HELP mlserve_request_duration_seconds Request latency.',
      '# TYPE mlserve_request_duration_seconds histogram',
      '',
    ].join('\n'),
    'labelled metrics have no samples yet; a label-less gauge starts at 0',
  )

  requests.inc({method: 'POST', code: '200'})
  requests.inc({code: '500', method: 'POST'}, 2)
  requests.inc({method: 'POST', code: '200'}, 0.5)
  requests.inc({method: 'GET', code: '200', extra: 'ignored'})
  inFlight.set(undefined, 3)
  inFlight.dec()
  inFlight.inc(undefined, 0.25)
  latency.observe({route: '/invocations'}, 0.05)
  latency.observe({route: '/ping'}, 0.001)
  latency.observe({route: '/invocations'}, 0.1) // on a bound: le is inclusive
  latency.observe({route: '/invocations'}, 0.5)
  latency.observe({route: '/invocations'}, 42)
  t.equal(
    registry.render(),
    [
      '# HELP mlserve_requests_total Requests answered.',
      '# TYPE mlserve_requests_total counter',
      'mlserve_requests_total{method="POST",code="200"} 1.5',
      'mlserve_requests_total{method="POST",code="500"} 2',
      'mlserve_requests_total{method="GET",code="200"} 1',
      '# HELP mlserve_scorers_ready Scorers ready.',
      '# TYPE mlserve_scorers_ready gauge',
      'mlserve_scorers_ready 2.25',
      '# HELP mlserve_request_duration_seconds Request latency.',
      '# TYPE mlserve_request_duration_seconds histogram',
      'mlserve_request_duration_seconds_bucket{route="/invocations",le="0.1"} 2',
      'mlserve_request_duration_seconds_bucket{route="/invocations",le="1"} 3',
      'mlserve_request_duration_seconds_bucket{route="/invocations",le="+Inf"} 4',
      'mlserve_request_duration_seconds_sum{route="/invocations"} 42.65',
      'mlserve_request_duration_seconds_count{route="/invocations"} 4',
      'mlserve_request_duration_seconds_bucket{route="/ping",le="0.1"} 1',
      'mlserve_request_duration_seconds_bucket{route="/ping",le="1"} 1',
      'mlserve_request_duration_seconds_bucket{route="/ping",le="+Inf"} 1',
      'mlserve_request_duration_seconds_sum{route="/ping"} 0.001',
      'mlserve_request_duration_seconds_count{route="/ping"} 1',
      '',
    ].join('\n'),
  )
  t.equal(PROMETHEUS_CONTENT_TYPE, 'text/plain; version=0.0.4; charset=utf-8')
})

t.test('a label-less histogram shows every default bucket from the start', async (t) => {
  const registry = new Registry()
  const latency = registry.histogram('scorer_seconds', 'Scorer latency.')
  t.same(DEFAULT_BUCKETS, [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])
  latency.observe(undefined, 0.003)
  latency.observe(undefined, 0.003)
  const lines = registry.render().split('\n')
  t.same(lines.slice(2, 5), [
    'scorer_seconds_bucket{le="0.001"} 0',
    'scorer_seconds_bucket{le="0.0025"} 0',
    'scorer_seconds_bucket{le="0.005"} 2',
  ])
  t.same(lines.slice(-5), [
    'scorer_seconds_bucket{le="60"} 2',
    'scorer_seconds_bucket{le="+Inf"} 2',
    'scorer_seconds_sum 0.006',
    'scorer_seconds_count 2',
    '',
  ])
  t.equal(lines.length, 2 + 16 + 2 + 1)
  latency.observe(undefined, NaN)
  t.match(registry.render(), /le="0.001"\} 0\n[^]*le="60"\} 2\n[^]*le="\+Inf"\} 3\n[^]*_sum NaN\n[^]*_count 3\n/, 'NaN counts in +Inf only')
})

t.test('label values and HELP text are escaped; awkward values never share a series', async (t) => {
  const registry = new Registry()
  const counter = registry.counter('weird_total', 'Back\\slash and\nnewline "quotes" stay.', ['a', 'b'])
  counter.inc({a: 'x\\y', b: 'say "hi"\nbye'})
  // The same characters split differently across the two values: two series, not one.
  counter.inc({a: '1:a', b: 'b'})
  counter.inc({a: '1', b: ':ab'})
  t.equal(
    registry.render(),
    [
      '# HELP weird_total Back\\\\slash and\\nnewline "quotes" stay.',
      '# TYPE weird_total counter',
      'weird_total{a="x\\\\y",b="say \\"hi\\"\\nbye"} 1',
      'weird_total{a="1:a",b="b"} 1',
      'weird_total{a="1",b=":ab"} 1',
      '',
    ].join('\n'),
  )
})

t.test('collected gauges are read at each render, in the order returned', async (t) => {
  const registry = new Registry()
  let inFlight = 0
  registry.gauge('in_flight', 'Requests in flight.').collect(() => inFlight)
  const perScorer: Array<[Record<string, string>, number]> = [
    [{scorer: '1'}, 4],
    [{scorer: '0'}, 2],
  ]
  const busy = registry.gauge('scorer_busy', 'Busy per scorer.', ['scorer']).collect(() => perScorer)
  inFlight = 7
  t.equal(
    registry.render(),
    [
      '# HELP in_flight Requests in flight.',
      '# TYPE in_flight gauge',
      'in_flight 7',
      '# HELP scorer_busy Busy per scorer.',
      '# TYPE scorer_busy gauge',
      'scorer_busy{scorer="1"} 4',
      'scorer_busy{scorer="0"} 2',
      '',
    ].join('\n'),
  )
  inFlight = 0
  perScorer.pop()
  t.match(registry.render(), /^in_flight 0\n[^]*^scorer_busy\{scorer="1"\} 4\n$/m, 'a label set no longer returned disappears')
  t.throws(() => busy.set({scorer: '1'}, 1), /read by collect/)
})

t.test('values as Prometheus parses them', async (t) => {
  t.same(
    [1, 0, -0, 0.1 + 0.2, 1e21, 1e-7, Infinity, -Infinity, NaN].map((v) => formatValue(v)),
    ['1', '0', '0', '0.30000000000000004', '1e+21', '1e-7', '+Inf', '-Inf', 'NaN'],
  )
})

t.test('misuse fails loudly', async (t) => {
  const registry = new Registry()
  const counter = registry.counter('c_total', 'c', ['method'])
  t.throws(() => registry.gauge('c_total', 'again'), /already registered/)
  t.throws(() => registry.counter('bad-name', 'x'), /invalid metric name/)
  t.throws(() => registry.counter('x_total', 'x', ['__reserved']), /invalid label name/)
  t.throws(() => registry.histogram('h', 'x', ['le']), /invalid label name/)
  t.throws(() => registry.histogram('h2', 'x', [], [1, 0.5]), /increasing/)
  t.throws(() => counter.inc(), /label method is missing/)
  t.throws(() => counter.inc({code: '200'}), /label method is missing/)
  t.throws(() => counter.inc({method: 'GET'}, -1), /cannot go down/)
  t.doesNotThrow(() => registry.histogram('h3', 'x', [], [0.5, 1, Infinity]), 'an explicit +Inf bucket is the implicit one')
  t.equal(registry.render().match(/le="\+Inf"/g)?.length, 1)
})

t.test('dropSeries forgets every series of one first-label value (a model no longer served)', async (t) => {
  const registry = new Registry()
  const requests = registry.counter('req_total', 'Requests.', ['model', 'route'])
  const latency = registry.histogram('lat_seconds', 'Latency.', ['model'], [1])
  requests.inc({model: 'a', route: '/x'})
  requests.inc({model: 'b', route: '/x'})
  requests.inc({model: 'b', route: '/y'})
  latency.observe({model: 'b'}, 0.5)
  latency.observe({model: 'a'}, 0.5)
  requests.dropSeries('b')
  latency.dropSeries('b')
  requests.dropSeries('nobody')
  const text = registry.render()
  t.notMatch(text, /model="b"/)
  t.match(text, /req_total\{model="a",route="\/x"\} 1/)
  t.match(text, /lat_seconds_count\{model="a"\} 1/)
  requests.inc({model: 'b', route: '/x'})
  t.match(registry.render(), /req_total\{model="b",route="\/x"\} 1\n/, 'a model served again starts from zero')
})
