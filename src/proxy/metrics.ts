// A minimal Prometheus registry: counters, gauges and histograms rendered in text exposition format 0.0.4.

export const PROMETHEUS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8'

/** Latency buckets in seconds for model serving: from a cached 1 ms answer up to a minute-long batch. */
export const DEFAULT_BUCKETS: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60]

/** Label values by label name. Keys beyond the metric's label names are ignored. */
export type Labels = Readonly<Record<string, string>>

/**
 * Owns the metrics of one server. `render()` lists them in registration order, each one's label sets in
 * the order they were first seen; label-less metrics show 0 from the start, so rate() has a baseline.
 */
export class Registry {
  private readonly metrics: Array<Counter | Gauge | Histogram> = []
  private readonly names = new Set<string>()

  counter(name: string, help: string, labelNames: readonly string[] = []): Counter {
    return this.add(new Counter(name, help, labelNames))
  }

  gauge(name: string, help: string, labelNames: readonly string[] = []): Gauge {
    return this.add(new Gauge(name, help, labelNames))
  }

  histogram(name: string, help: string, labelNames: readonly string[] = [], buckets = DEFAULT_BUCKETS): Histogram {
    return this.add(new Histogram(name, help, labelNames, buckets))
  }

  render(): string {
    let out = ''
    for (const metric of this.metrics) out += metric.render()
    return out
  }

  private add<M extends Counter | Gauge | Histogram>(metric: M): M {
    if (this.names.has(metric.name)) throw new Error(`metric ${metric.name} is already registered`)
    this.names.add(metric.name)
    this.metrics.push(metric)
    return metric
  }
}

const METRIC_NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/
const LABEL_NAME = /^[a-zA-Z_]\w*$/

/** What every metric type shares: names, the header lines, and finding the series for a label set. */
abstract class Metric<S> {
  /** The series in first-seen order, for render(). */
  protected readonly series: S[] = []
  /**
   * The same series by label values, one Map level per label name. Measured against one joined key per
   * call: 4 times faster with two labels (no string to build and hash, values are usually interned), and
   * no value, whatever it contains, can make two label sets collide.
   */
  private readonly trie = new Map<string, unknown>()
  protected readonly header: string

  constructor(
    readonly name: string,
    readonly help: string,
    readonly labelNames: readonly string[],
    type: string,
  ) {
    if (!METRIC_NAME.test(name)) throw new Error(`invalid metric name ${JSON.stringify(name)}`)
    for (const label of labelNames) {
      if (!LABEL_NAME.test(label) || label.startsWith('__') || (type === 'histogram' && label === 'le')) {
        throw new Error(`metric ${name}: invalid label name ${JSON.stringify(label)}`)
      }
    }

    if (new Set(labelNames).size !== labelNames.length) throw new Error(`metric ${name}: duplicate label names`)
    this.header = `# HELP ${name} ${escapeHelp(help)}\n# TYPE ${name} ${type}\n`
  }

  abstract render(): string

  /** The series for these labels, created on first sight. The hot path: a Map lookup per label, no allocation. */
  protected seriesFor(labels: Labels | undefined): S {
    const names = this.labelNames
    const last = names.length - 1
    let node = this.trie
    for (let i = 0; i < last; i++) {
      const value = labelValue(this.name, names[i]!, labels)
      let next = node.get(value) as Map<string, unknown> | undefined
      if (next === undefined) node.set(value, (next = new Map()))
      node = next
    }

    const value = last < 0 ? '' : labelValue(this.name, names[last]!, labels)
    let series = node.get(value) as S | undefined
    if (series === undefined) {
      series = this.createSeries(labelPairs(this.name, names, labels))
      node.set(value, series)
      this.series.push(series)
    }

    return series
  }

  protected abstract createSeries(pairs: string): S

  /** Forgets every series whose first label has `value` (a model no longer served): they are no longer rendered. */
  dropSeries(value: string): void {
    const subtree = this.trie.get(value)
    if (subtree === undefined) return
    this.trie.delete(value)
    const gone = new Set<unknown>()
    const collect = (node: unknown, depth: number): void => {
      if (depth === 0) gone.add(node)
      else for (const child of (node as Map<string, unknown>).values()) collect(child, depth - 1)
    }

    collect(subtree, Math.max(0, this.labelNames.length - 1))
    const kept = this.series.filter((series) => !gone.has(series))
    this.series.length = 0
    this.series.push(...kept)
  }
}

function labelValue(metric: string, name: string, labels: Labels | undefined): string {
  const value = labels?.[name]
  if (value === undefined) throw new Error(`metric ${metric}: label ${name} is missing`)
  return value
}

/** `a="x",b="y"` in label-name order: built once per series, never per call. */
function labelPairs(metric: string, names: readonly string[], labels: Labels | undefined): string {
  return names.map((name) => `${name}="${escapeLabelValue(labelValue(metric, name, labels))}"`).join(',')
}

const braces = (pairs: string): string => (pairs === '' ? '' : `{${pairs}}`)

const escapeLabelValue = (value: string): string => value.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n')

const escapeHelp = (help: string): string => help.replaceAll('\\', '\\\\').replaceAll('\n', '\\n')

/** Numbers as Prometheus parses them (Go's ParseFloat): JavaScript's shortest form, with ±Inf and NaN spelled its way. */
export function formatValue(value: number): string {
  if (Number.isFinite(value)) return String(value)
  return Number.isNaN(value) ? 'NaN' : value > 0 ? '+Inf' : '-Inf'
}

interface ValueSeries {
  readonly pairs: string
  value: number
}

/** A value that only goes up (requests, errors). */
export class Counter extends Metric<ValueSeries> {
  constructor(name: string, help: string, labelNames: readonly string[]) {
    super(name, help, labelNames, 'counter')
    if (labelNames.length === 0) this.seriesFor(undefined)
  }

  inc(labels?: Labels, by = 1): void {
    if (!(by >= 0)) throw new Error(`counter ${this.name} cannot go down (inc by ${by})`)
    this.seriesFor(labels).value += by
  }

  render(): string {
    return renderValues(this.header, this.name, this.series)
  }

  protected createSeries(pairs: string): ValueSeries {
    return {pairs, value: 0}
  }
}

export type GaugeReading = number | ReadonlyArray<readonly [Labels, number]>

/** A value that goes up and down: set by the caller, or read at scrape time through `collect`. */
export class Gauge extends Metric<ValueSeries> {
  private collector: (() => GaugeReading) | undefined

  constructor(name: string, help: string, labelNames: readonly string[]) {
    super(name, help, labelNames, 'gauge')
    if (labelNames.length === 0) this.seriesFor(undefined)
  }

  set(labels: Labels | undefined, value: number): void {
    this.settable(labels).value = value
  }

  inc(labels?: Labels, by = 1): void {
    this.settable(labels).value += by
  }

  dec(labels?: Labels, by = 1): void {
    this.settable(labels).value -= by
  }

  /**
   * Reads the gauge at each render instead (requests in flight, live scorers): a number for a label-less
   * gauge, or [labels, value] pairs, listed in the order returned. Label sets the function stops
   * returning disappear from the output; set/inc/dec are then refused, as their values would not show.
   * An exception from `read` propagates out of `render()`.
   */
  collect(read: () => GaugeReading): this {
    this.collector = read
    return this
  }

  render(): string {
    if (this.collector === undefined) return renderValues(this.header, this.name, this.series)
    const reading = this.collector()
    if (typeof reading === 'number') {
      if (this.labelNames.length > 0) throw new Error(`gauge ${this.name} has labels: collect must return pairs`)
      return `${this.header}${this.name} ${formatValue(reading)}\n`
    }

    const series = reading.map(([labels, value]) => ({pairs: labelPairs(this.name, this.labelNames, labels), value}))
    return renderValues(this.header, this.name, series)
  }

  protected createSeries(pairs: string): ValueSeries {
    return {pairs, value: 0}
  }

  private settable(labels: Labels | undefined): ValueSeries {
    if (this.collector !== undefined) throw new Error(`gauge ${this.name} is read by collect(), not set`)
    return this.seriesFor(labels)
  }
}

function renderValues(header: string, name: string, series: Iterable<ValueSeries>): string {
  let out = header
  for (const {pairs, value} of series) out += `${name}${braces(pairs)} ${formatValue(value)}\n`
  return out
}

interface HistogramSeries {
  /** `a="x",` ready to take `le="…"` after it; empty for a label-less histogram. */
  readonly prefix: string
  readonly pairs: string
  /** Observations per bucket, not cumulative (one write per observe); the last slot is +Inf. */
  readonly counts: Float64Array
  sum: number
}

/** Observations (latencies in seconds) counted into fixed buckets, with their sum and count. */
export class Histogram extends Metric<HistogramSeries> {
  private readonly bounds: Float64Array
  private readonly les: readonly string[]

  constructor(name: string, help: string, labelNames: readonly string[], buckets: readonly number[]) {
    super(name, help, labelNames, 'histogram')
    const finite = buckets.filter((bound) => bound !== Number.POSITIVE_INFINITY)
    if (finite.some((bound, i) => Number.isNaN(bound) || (i > 0 && bound <= finite[i - 1]!))) {
      throw new Error(`histogram ${name}: buckets must be increasing numbers`)
    }

    this.bounds = Float64Array.from(finite)
    this.les = [...finite.map((bound) => formatValue(bound)), '+Inf']
    if (labelNames.length === 0) this.seriesFor(undefined)
  }

  observe(labels: Labels | undefined, seconds: number): void {
    const series = this.seriesFor(labels)
    const {bounds} = this
    let i = 0
    // Linear: few buckets, most latencies in the first ones. NaN lands in +Inf only, as in client_golang.
    while (i < bounds.length && !(seconds <= bounds[i]!)) i++
    series.counts[i]!++
    series.sum += seconds
  }

  render(): string {
    let out = this.header
    const {name, les} = this
    for (const {prefix, pairs, counts, sum} of this.series) {
      let cumulative = 0
      for (let i = 0; i < les.length; i++) {
        cumulative += counts[i]!
        out += `${name}_bucket{${prefix}le="${les[i]}"} ${formatValue(cumulative)}\n`
      }

      out += `${name}_sum${braces(pairs)} ${formatValue(sum)}\n${name}_count${braces(pairs)} ${formatValue(cumulative)}\n`
    }

    return out
  }

  protected createSeries(pairs: string): HistogramSeries {
    return {prefix: pairs === '' ? '' : `${pairs},`, pairs, counts: new Float64Array(this.bounds.length + 1), sum: 0}
  }
}
