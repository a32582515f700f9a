import { afterAll, beforeAll, describe, expect, test } from 'bun:test'
import { mkdir, writeFile } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { readCpuLimits, readUsableCores } from '../../src/inference/cpu-limits.ts'
import { makeTempDir } from '../support/temp.ts'

let temp: Awaited<ReturnType<typeof makeTempDir>>
beforeAll(async () => {
  temp = await makeTempDir('lln-cpu-limits-')
})
afterAll(async () => {
  await temp.cleanup()
})

/** A /proc and /sys tree of real files under a folder of its own, as Linux lays them out. */
async function fakeRoot(name: string, files: Record<string, string>): Promise<string> {
  const root = join(temp.path, name)
  for (const [path, text] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true })
    await writeFile(join(root, path), text)
  }
  return root
}

const status = (cpus: string) => `Name:\tbun\nState:\tR (running)\nCpus_allowed:\tff\nCpus_allowed_list:\t${cpus}\nMems_allowed_list:\t0\n`

describe('cgroup quotas and CPU affinity, read from files', () => {
  test('cgroup v2: the quota of the process cgroup and of every cgroup above it, the tightest winning', async () => {
    const root = await fakeRoot('v2', {
      'proc/self/status': status('0-7'),
      'proc/self/cgroup': '0::/system.slice/detector.service\n',
      'sys/fs/cgroup/system.slice/detector.service/cpu.max': '250000 100000\n',
      'sys/fs/cgroup/system.slice/cpu.max': 'max 100000\n',
    })
    expect(await readCpuLimits({ root, hostCores: 16 })).toEqual({ hostCores: 16, affinityCores: 8, quotaCores: 2.5 })
    expect(await readUsableCores({ root, hostCores: 16 })).toBe(3)
    await writeFile(join(root, 'sys/fs/cgroup/system.slice/cpu.max'), '100000 100000\n')
    expect(await readUsableCores({ root, hostCores: 16 })).toBe(1)
  })

  test('cgroup v1 (docker without a cgroup namespace): the cpu controller under its mount, found from the container root', async () => {
    const root = await fakeRoot('v1', {
      'proc/self/status': status('0-15'),
      'proc/self/cgroup': '9:name=systemd:/docker/4f2a\n4:cpu,cpuacct:/docker/4f2a\n3:cpuset:/docker/4f2a\n',
      // inside the container the mount shows the container's own cgroup at its root
      'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us': '300000\n',
      'sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us': '100000\n',
    })
    expect(await readCpuLimits({ root, hostCores: 32 })).toEqual({ hostCores: 32, affinityCores: 16, quotaCores: 3 })
    expect(await readUsableCores({ root, hostCores: 32 })).toBe(3)
  })

  test('no quota (-1, max) and no readable files leave the host cores and the affinity', async () => {
    const unlimited = await fakeRoot('unlimited', {
      'proc/self/status': status('0-3'),
      'proc/self/cgroup': '1:cpu:/\n0::/\n',
      'sys/fs/cgroup/cpu/cpu.cfs_quota_us': '-1\n',
      'sys/fs/cgroup/cpu/cpu.cfs_period_us': '100000\n',
      'sys/fs/cgroup/cpu.max': 'max 100000\n',
    })
    expect(await readCpuLimits({ root: unlimited, hostCores: 8 })).toEqual({ hostCores: 8, affinityCores: 4 })
    const empty = await fakeRoot('empty', {})
    expect(await readCpuLimits({ root: empty, hostCores: 8 })).toEqual({ hostCores: 8 })
    expect(await readUsableCores({ root: empty, hostCores: 8 })).toBe(8)
  })

  test('an unreadable /proc/self (Deno without --allow-all) still finds the quota of the container cgroup at the root', async () => {
    const container = await fakeRoot('no-proc', { 'sys/fs/cgroup/cpu.max': '200000 100000\n' })
    expect(await readCpuLimits({ root: container, hostCores: 8 })).toEqual({ hostCores: 8, quotaCores: 2 })
  })
})

describe('the CPU affinity of a real process', () => {
  const printUsableCores = `import { readUsableCores } from ${JSON.stringify(join(import.meta.dir, '../../src/inference/cpu-limits.ts'))}; console.log(await readUsableCores())`
  const run = async (command: string[]) => {
    const child = Bun.spawn(command, { stdout: 'pipe', stderr: 'pipe' })
    const [out, err, code] = [await new Response(child.stdout).text(), await new Response(child.stderr).text(), await child.exited]
    expect({ code, err }).toEqual({ code: 0, err: '' })
    return Number(out.trim())
  }

  test('a child pinned to one CPU with taskset counts one usable core; unpinned it counts the CPUs this process may use', async () => {
    expect(Bun.which('taskset')).not.toBeNull() // util-linux, essential on Debian
    expect(await run(['taskset', '-c', '0', process.execPath, '-e', printUsableCores])).toBe(1)
    const unpinned = await run([process.execPath, '-e', printUsableCores])
    expect(unpinned).toBe(await readUsableCores())
    expect(unpinned).toBeGreaterThanOrEqual(1)
  })
})
