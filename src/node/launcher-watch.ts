/**
 * `npx learning-loop-node …` runs the node under `npm exec`, which starts it through `sh -c`: a SIGTERM to npm
 * (docker stop, a process manager) reaches that shell, which dies without passing it on, and the node would keep
 * running, orphaned. So a node started by npm treats its parent's exit as a stop request. Outside npm it does not:
 * `nohup learning-loop-node … &` must outlive the shell that started it.
 */
const CHECK_INTERVAL_MS = 1_000

/** Calls `onParentExit` once when the process started by npm loses its parent; returns a stop function. */
export function watchNpmLauncher(onParentExit: () => void, env: Record<string, string | undefined> = process.env): () => void {
  if (!env.npm_command && !env.npm_lifecycle_event) return () => {}
  const parent = process.ppid
  const timer = setInterval(() => {
    if (process.ppid === parent) return
    clearInterval(timer)
    onParentExit()
  }, CHECK_INTERVAL_MS)
  timer.unref()
  return () => clearInterval(timer)
}
