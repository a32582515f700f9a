/**
 * Starting a module Worker on either runtime. Bun's Worker can be unref'd, so an idle one does not keep the
 * process alive; Deno's has no ref/unref (an idle Worker keeps the process until it is terminated), so there
 * they do nothing and the owner must terminate its workers when it is done.
 */

/** A Worker with Bun's ref/unref (no-ops on Deno). */
export type ModuleWorker = Worker & { ref(): void; unref(): void }

// onnxruntime-web's emscripten glue replaces `global.Worker` with node:worker_threads' Worker when it runs on
// a thread (it thinks it is in Node); keep the web-style Worker this module was loaded with
const WebWorker = globalThis.Worker

/** Starts the module at `url` (next to the caller: `new URL('./x.ts', import.meta.url)`) as a Worker. */
export function startModuleWorker(url: URL): ModuleWorker {
  const worker = new WebWorker(url.href, { type: 'module' }) as Partial<ModuleWorker> & Worker
  if (typeof worker.ref !== 'function' || typeof worker.unref !== 'function') {
    worker.ref = () => {}
    worker.unref = () => {}
  }
  return worker as ModuleWorker
}
