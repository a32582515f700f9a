/**
 * A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text
 * exposition format for GET /metrics. Names follow Prometheus conventions (`_total`, `_seconds`, `_bytes`);
 * code names them without the namespace, which `render` puts in front of every name (`lln_` by default).
 */
type Labels = Record<string, string>

const escapeLabelValue = (value: string) =>
  /[\\"\n]/.test(value) ? value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n') : value
// runs several times per detection, so no intermediate arrays beyond the key list
function labelKey(labels: Labels): string {
  const names = Object.keys(labels)
  if (names.length > 1) names.sort()
  let key = ''
  for (const name of names) key += `${key ? ',' : ''}${name}="${escapeLabelValue(String(labels[name]))}"`
  return key
}
const withBraces = (key: string) => (key ? `{${key}}` : '')

interface Metric {
  readonly name: string
  render(namespace: string): string
}

export class Counter implements Metric {
  private readonly values = new Map<string, number>()
  constructor(readonly name: string, readonly help: string) {}
  inc(labels: Labels = {}, by = 1): void {
    const key = labelKey(labels)
    this.values.set(key, (this.values.get(key) ?? 0) + by)
  }
  get(labels: Labels = {}): number {
    return this.values.get(labelKey(labels)) ?? 0
  }
  render(namespace = ''): string {
    const name = namespace + this.name
    const lines = [`# HELP ${name} ${this.help}`, `# TYPE ${name} counter`]
    if (this.values.size === 0) lines.push(`${name} 0`)
    for (const [key, value] of this.values) lines.push(`${name}${withBraces(key)} ${value}`)
    return lines.join('\n')
  }
}

export class Gauge implements Metric {
  private readonly values = new Map<string, number>()
  private collector?: () => void
  constructor(readonly name: string, readonly help: string) {}
  set(value: number, labels: Labels = {}): void {
    this.values.set(labelKey(labels), value)
  }
  get(labels: Labels = {}): number | undefined {
    return this.values.get(labelKey(labels))
  }
  /** Forgets every series (a collector that sets them all again drops those whose subject is gone). */
  clear(): void {
    this.values.clear()
  }
  /** Computes the value(s) at scrape time. */
  collect(collector: () => void): this {
    this.collector = collector
    return this
  }
  render(namespace = ''): string {
    this.collector?.()
    const name = namespace + this.name
    const lines = [`# HELP ${name} ${this.help}`, `# TYPE ${name} gauge`]
    for (const [key, value] of this.values) lines.push(`${name}${withBraces(key)} ${value}`)
    return lines.join('\n')
  }
}

export const LATENCY_BUCKETS_SECONDS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]

export class Histogram implements Metric {
  private readonly series = new Map<string, { counts: number[]; sum: number; count: number }>()
  constructor(readonly name: string, readonly help: string, readonly buckets = LATENCY_BUCKETS_SECONDS) {}
  observe(value: number, labels: Labels = {}): void {
    const key = labelKey(labels)
    let s = this.series.get(key)
    if (!s) this.series.set(key, (s = { counts: this.buckets.map(() => 0), sum: 0, count: 0 }))
    for (let i = 0; i < this.buckets.length; i++) if (value <= this.buckets[i]!) s.counts[i]!++
    s.sum += value
    s.count++
  }
  count(labels: Labels = {}): number {
    return this.series.get(labelKey(labels))?.count ?? 0
  }
  render(namespace = ''): string {
    const name = namespace + this.name
    const lines = [`# HELP ${name} ${this.help}`, `# TYPE ${name} histogram`]
    for (const [key, s] of this.series) {
      const sep = key ? ',' : ''
      this.buckets.forEach((b, i) => lines.push(`${name}_bucket{${key}${sep}le="${b}"} ${s.counts[i]}`))
      lines.push(`${name}_bucket{${key}${sep}le="+Inf"} ${s.count}`)
      lines.push(`${name}_sum${withBraces(key)} ${s.sum}`)
      lines.push(`${name}_count${withBraces(key)} ${s.count}`)
    }
    return lines.join('\n')
  }
}

/** The namespace every exported metric name starts with. */
export const METRICS_NAMESPACE = 'lln_'

export class MetricsRegistry {
  private readonly metrics = new Map<string, Metric>()
  constructor(private readonly namespace = METRICS_NAMESPACE) {}
  private register<M extends Metric>(metric: M): M {
    const existing = this.metrics.get(metric.name)
    if (existing) return existing as M
    this.metrics.set(metric.name, metric)
    return metric
  }
  counter(name: string, help: string): Counter {
    return this.register(new Counter(name, help))
  }
  gauge(name: string, help: string): Gauge {
    return this.register(new Gauge(name, help))
  }
  histogram(name: string, help: string, buckets?: number[]): Histogram {
    return this.register(new Histogram(name, help, buckets))
  }
  render(): string {
    return [...this.metrics.values()].map((m) => m.render(this.namespace)).join('\n') + '\n'
  }
}
