import { readdirSync, readFileSync } from 'node:fs'

/**
 * Process liveness that also works where PID 1 does not reap orphans (some containers and sandboxes): there an
 * exited process stays a zombie, `kill(pid, 0)` still succeeds, and only /proc tells that it is gone.
 */
const HAS_PROC = process.platform === 'linux' && safeExists('/proc/self/stat')

/**
 * What the group checks can see. Without /proc (other systems, or Deno without --allow-all, which /proc needs)
 * they fall back to `kill(-pgid, 0)`, which also counts zombies: exited processes not yet reaped.
 */
export const GROUP_MEMBERS_VISIBLE = HAS_PROC

function safeExists(path: string): boolean {
  try {
    readFileSync(path)
    return true
  } catch {
    return false
  }
}

/** `[state, ppid, pgrp]` from /proc/<pid>/stat, or undefined when the process does not exist. */
function procStat(pid: number | string): { state: string; ppid: number; pgrp: number } | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  // the command name is in parentheses and may itself contain spaces or parentheses
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return { state: fields[0] ?? '?', ppid: Number(fields[1]), pgrp: Number(fields[2]) }
}

/** True while `pid` runs (a zombie counts as gone). */
export function isProcessAlive(pid: number): boolean {
  if (HAS_PROC) {
    const stat = procStat(pid)
    return stat !== undefined && stat.state !== 'Z' && stat.state !== 'X'
  }
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Process ids of the live (non-zombie) members of a process group. Empty when unknown (no /proc). */
export function processGroupMembers(pgid: number): number[] {
  if (!HAS_PROC) return []
  const members: number[] = []
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue
    const stat = procStat(name)
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X') members.push(Number(name))
  }
  return members
}

/** True while any member of the group runs. */
export function isProcessGroupAlive(pgid: number): boolean {
  if (HAS_PROC) return processGroupMembers(pgid).length > 0
  try {
    process.kill(-pgid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The process group of `pid` (Linux only; undefined elsewhere or when the process is gone). */
export function processGroupOf(pid: number): number | undefined {
  return HAS_PROC ? procStat(pid)?.pgrp : undefined
}

/** Sends `signal` to every process of the group; false when the group no longer exists. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ESRCH') return false
    throw error
  }
}
