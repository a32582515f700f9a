import { readdir, readFile } from 'node:fs/promises'

/** What benchmarks watch of a process for leaks: resident memory and open file descriptors (Linux /proc). */
export interface ProcessSample {
  rssBytes: number
  fds: number
}

export async function sampleProcess(pid: number | 'self'): Promise<ProcessSample> {
  const [status, fds] = await Promise.all([readFile(`/proc/${pid}/status`, 'utf8'), readdir(`/proc/${pid}/fd`)])
  const rssKiB = Number(/^VmRSS:\s+(\d+) kB/m.exec(status)?.[1] ?? NaN)
  return { rssBytes: rssKiB * 1024, fds: fds.length }
}
