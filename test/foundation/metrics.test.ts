import { describe, expect, test } from 'bun:test'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'

describe('metrics registry', () => {
  test('counters with labels are keyed independently of label order and rendered in the exposition format', () => {
    const registry = new MetricsRegistry()
    const requests = registry.counter('http_requests_total', 'HTTP requests')
    requests.inc({ route: '/detect', method: 'POST' })
    requests.inc({ method: 'POST', route: '/detect' }, 2)
    requests.inc({ route: '/about', method: 'GET' })
    expect(requests.get({ route: '/detect', method: 'POST' })).toBe(3)
    const text = registry.render()
    expect(text).toContain('# TYPE lln_http_requests_total counter')
    expect(text).toContain('lln_http_requests_total{method="POST",route="/detect"} 3')
    expect(text).toContain('lln_http_requests_total{method="GET",route="/about"} 1')
  })

  test('every name is exported under the namespace (lln_ unless told otherwise)', () => {
    const plain = new MetricsRegistry('')
    plain.gauge('items', 'items').set(2)
    expect(plain.render()).toContain('\nitems 2')
    const named = new MetricsRegistry()
    named.gauge('items', 'items').set(2)
    named.histogram('wait_seconds', 'wait', [1]).observe(0.5)
    const text = named.render()
    expect(text).toContain('# TYPE lln_items gauge\nlln_items 2')
    expect(text).toContain('lln_wait_seconds_bucket{le="1"} 1')
    expect(text).toContain('lln_wait_seconds_sum 0.5')
  })

  test('label values with quotes, backslashes and newlines are escaped', () => {
    const registry = new MetricsRegistry()
    registry.gauge('odd', 'odd labels').set(1, { path: 'C:\\data "x"\nnext' })
    expect(registry.render()).toContain('lln_odd{path="C:\\\\data \\"x\\"\\nnext"} 1')
  })

  test('an unlabelled counter renders 0 before its first increment; histograms count into cumulative buckets', () => {
    const registry = new MetricsRegistry()
    registry.counter('never_total', 'never incremented')
    const latency = registry.histogram('latency_seconds', 'latency', [0.01, 0.1])
    latency.observe(0.005, { stage: 'decode' })
    latency.observe(0.05, { stage: 'decode' })
    const text = registry.render()
    expect(text).toContain('lln_never_total 0')
    expect(text).toContain('lln_latency_seconds_bucket{stage="decode",le="0.01"} 1')
    expect(text).toContain('lln_latency_seconds_bucket{stage="decode",le="0.1"} 2')
    expect(text).toContain('lln_latency_seconds_bucket{stage="decode",le="+Inf"} 2')
    expect(text).toContain('lln_latency_seconds_count{stage="decode"} 2')
    expect(latency.count({ stage: 'decode' })).toBe(2)
  })
})
