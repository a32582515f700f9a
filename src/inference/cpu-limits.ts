/**
 * Reads the CPU limits of this process from Linux's files: the affinity mask (`Cpus_allowed_list` in
 * /proc/self/status: taskset, a cpuset) and the cgroup CPU quota (v2 `cpu.max`, v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`)
 * of the process's cgroup and every cgroup above it, the tightest winning. Elsewhere (macOS, Windows) or when a file
 * is missing, that limit is simply unknown. `root` is `/` in production and a folder of real files in tests. Deno reads
 * /proc/self only with --allow-all; there the runtime's navigator.hardwareConcurrency already honours the affinity.
 */
import { readFile } from 'node:fs/promises'
import { join, posix } from 'node:path'
import { countCpuList, parseCfsQuota, parseCpuMax, usableCores, type CpuLimits } from './thread-policy.ts'

const readText = (path: string) => readFile(path, 'utf8').catch(() => undefined)

/** The cgroup folders from the process's own up to the hierarchy's root: a quota anywhere above limits it too. */
function selfAndAncestors(cgroupPath: string): string[] {
  const folders: string[] = []
  for (let folder = posix.normalize(`/${cgroupPath}`); ; folder = posix.dirname(folder)) {
    folders.push(folder)
    if (folder === '/') return folders
  }
}

const tightest = (values: (number | undefined)[]) => {
  const known = values.filter((v): v is number => v !== undefined)
  return known.length > 0 ? Math.min(...known) : undefined
}

async function readQuotaCores(root: string): Promise<number | undefined> {
  // Deno lets only --allow-all read /proc/self: then assume the cgroup namespace of a container (its own cgroup at the root)
  const membership = (await readText(join(root, 'proc/self/cgroup'))) ?? '0::/\n1:cpu:/\n'
  const quotas: (number | undefined)[] = []
  for (const line of membership.split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line.trim())
    if (!match) continue
    const [, hierarchy, controllers, path] = match as unknown as [string, string, string, string]
    if (hierarchy === '0' && controllers === '') {
      for (const folder of selfAndAncestors(path)) {
        const text = await readText(join(root, 'sys/fs/cgroup', folder, 'cpu.max'))
        if (text) quotas.push(parseCpuMax(text))
      }
    } else if (controllers.split(',').includes('cpu')) {
      // the v1 cpu controller is mounted as cpu, cpu,cpuacct or cpuacct,cpu depending on the distribution
      for (const mount of ['cpu', 'cpu,cpuacct', 'cpuacct,cpu']) {
        for (const folder of selfAndAncestors(path)) {
          const [quota, period] = await Promise.all(['cpu.cfs_quota_us', 'cpu.cfs_period_us'].map((file) => readText(join(root, 'sys/fs/cgroup', mount, folder, file))))
          if (quota && period) quotas.push(parseCfsQuota(quota, period))
        }
      }
    }
  }
  return tightest(quotas)
}

async function readAffinityCores(root: string): Promise<number | undefined> {
  const status = await readText(join(root, 'proc/self/status'))
  const list = status?.split('\n').find((line) => line.startsWith('Cpus_allowed_list:'))
  return list ? countCpuList(list.slice('Cpus_allowed_list:'.length)) : undefined
}

export interface CpuLimitsSource {
  /** folder the /proc and /sys paths are read under (default `/`) */
  root?: string
  /** logical cores of the machine (default: navigator.hardwareConcurrency, which needs no permission on Deno) */
  hostCores?: number
}

export async function readCpuLimits(source: CpuLimitsSource = {}): Promise<CpuLimits> {
  const root = source.root ?? '/'
  const hostCores = source.hostCores ?? Math.max(1, navigator.hardwareConcurrency || 1)
  // without /proc (not Linux, or a Deno process not allowed to read it) the affinity and quota are unknown
  const [affinityCores, quotaCores] = await Promise.all([readAffinityCores(root), readQuotaCores(root)])
  return { hostCores, ...(affinityCores !== undefined ? { affinityCores } : {}), ...(quotaCores !== undefined ? { quotaCores } : {}) }
}

/** The cores this process can keep busy (see usableCores). */
export async function readUsableCores(source: CpuLimitsSource = {}): Promise<number> {
  return usableCores(await readCpuLimits(source))
}
