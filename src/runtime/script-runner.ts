/**
 * The command that runs a script (TypeScript or JavaScript) with the runtime of this process, for child
 * processes such as a trainer's training program (`{bun}` in its command). On Bun that is Bun's executable. On
 * Deno it is `deno run` with the permissions this process holds, no more: each permission granted in full is
 * passed on as `--allow-<name>`, the system-information kinds granted one by one as `--allow-sys=<kinds>`;
 * one granted only for some paths or hosts is not passed on. `--no-prompt`: a child must not wait for a TTY.
 */
import { RUNTIME } from './runtime-name.ts'

const FULL_PERMISSIONS = ['read', 'write', 'net', 'env', 'ffi', 'run', 'sys'] as const
const SYS_KINDS = ['hostname', 'osRelease', 'osUptime', 'loadavg', 'networkInterfaces', 'systemMemoryInfo', 'uid', 'gid', 'username', 'cpus', 'homedir', 'statfs', 'getPriority', 'setPriority', 'umask'] as const

interface DenoPermissions {
  execPath(): string
  permissions: { querySync(descriptor: { name: string; kind?: string }): { state: 'granted' | 'denied' | 'prompt' } }
}

function denoPermissionFlags(deno: DenoPermissions): string[] {
  const granted = (name: string, kind?: string) => deno.permissions.querySync(kind ? { name, kind } : { name }).state === 'granted'
  const flags = FULL_PERMISSIONS.filter((name) => granted(name)).map((name) => `--allow-${name}`)
  if (!flags.includes('--allow-sys')) {
    const kinds = SYS_KINDS.filter((kind) => granted('sys', kind))
    if (kinds.length > 0) flags.push(`--allow-sys=${kinds.join(',')}`)
  }
  return flags
}

export function scriptRunnerCommand(): string[] {
  const deno = (globalThis as { Deno?: DenoPermissions }).Deno
  if (RUNTIME === 'deno' && deno) return [deno.execPath(), 'run', '--no-prompt', ...denoPermissionFlags(deno)]
  return [process.execPath]
}
