/** Reading a node's `/metrics` (Prometheus text) in benchmarks: samples by metric name, summed by label. */

/** metric name → its samples: the labels as written between the braces (empty when none) and the value */
export type MetricSamples = Map<string, { labels: string; value: number }[]>

export function parseMetrics(text: string): MetricSamples {
  const samples: MetricSamples = new Map()
  for (const line of text.split('\n')) {
    const m = /^(\w+)(?:\{([^}]*)\})? (\S+)$/.exec(line)
    if (!m) continue
    const list = samples.get(m[1]!) ?? []
    list.push({ labels: m[2] ?? '', value: Number(m[3]) })
    samples.set(m[1]!, list)
  }
  return samples
}

/** The sum of a metric's samples, of those whose labels `match` accepts when given. */
export function sumOf(samples: MetricSamples, name: string, match: (labels: string) => boolean = () => true): number {
  return (samples.get(name) ?? []).filter((s) => match(s.labels)).reduce((sum, s) => sum + s.value, 0)
}

/** A metric's labelled values by their labels (`queue="normal",reason="limit"` → 12). */
export function byLabels(samples: MetricSamples, name: string): Record<string, number> {
  return Object.fromEntries((samples.get(name) ?? []).filter((s) => s.labels !== '').map((s) => [s.labels, s.value]))
}
