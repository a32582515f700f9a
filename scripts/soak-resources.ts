/**
 * The soak benchmark's memory and descriptor figures (scripts/soak.ts), pure. Both nodes are sampled every few
 * seconds; RSS of a garbage-collected process swings by ±10 % between two samples a few seconds apart (on 2 cores
 * we saw 181–236 MiB within one minute of steady load), so start and end are a minute of samples each, compared by
 * their medians and their minimums (the floor after collections, where a leak shows first).
 */
import type { ProcessSample } from './process-sample.ts'

export interface ResourceSample extends ProcessSample {
  process: 'detector' | 'loop'
  /** which process of that node (1 for the first, +1 per restart) */
  life: number
  /** ms since the soak began */
  at: number
}

export interface WindowStats {
  samples: number
  rssMedian: number
  rssMin: number
  rssMax: number
  fdsMedian: number
  fdsMin: number
  fdsMax: number
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[Math.floor((sorted.length - 1) / 2)]!
}

/** Statistics of one node's samples in [from, to), of one of its processes when `life` is given. */
export function windowStats(series: readonly ResourceSample[], process: ResourceSample['process'], from: number, to: number, life?: number): WindowStats | undefined {
  const picked = series.filter((s) => s.process === process && s.at >= from && s.at < to && (life === undefined || s.life === life) && Number.isFinite(s.rssBytes))
  if (picked.length === 0) return undefined
  const rss = picked.map((s) => s.rssBytes)
  const fds = picked.map((s) => s.fds)
  return {
    samples: picked.length, rssMedian: median(rss), rssMin: Math.min(...rss), rssMax: Math.max(...rss),
    fdsMedian: median(fds), fdsMin: Math.min(...fds), fdsMax: Math.max(...fds),
  }
}

export interface Drift {
  start: WindowStats
  end: WindowStats
  /** end median / start median − 1 */
  rssMedian: number
  /** end minimum / start minimum − 1 */
  rssFloor: number
  /** end median − start median */
  fds: number
}

export function drift(start: WindowStats | undefined, end: WindowStats | undefined): Drift | undefined {
  if (!start || !end) return undefined
  return { start, end, rssMedian: end.rssMedian / start.rssMedian - 1, rssFloor: end.rssMin / start.rssMin - 1, fds: end.fdsMedian - start.fdsMedian }
}
