import { join } from 'node:path'
import { LocalLoop, type LocalLoopOptions } from '../../src/local-loop/local-loop.ts'
import { makeTempDir } from './temp.ts'

/**
 * A LocalLoop on a free port of 127.0.0.1 in a fresh temp folder: the peer of every integration test.
 * The loop keeps its data in `<folder>/loop`; the rest of `folder` is the test's, for its nodes' data.
 */
export interface TestLoop {
  /** the running loop (`restart` replaces it) */
  loop: LocalLoop
  /** the temp folder */
  folder: string
  /** the loop's data folder, `<folder>/loop` */
  dataFolder: string
  /** starts the loop again on the same data folder, port and options (stopping it first if it still runs) */
  restart(): Promise<LocalLoop>
  /** stops the loop (if still running) and removes the temp folder */
  cleanup(): Promise<void>
}

/** What a test may set: everything but the data folder, which is the fixture's. */
export type TestLoopOptions = Partial<Omit<LocalLoopOptions, 'dataFolder'>>

export async function startTestLoop(options: TestLoopOptions = {}): Promise<TestLoop> {
  const temp = await makeTempDir('lln-loop-')
  const dataFolder = join(temp.path, 'loop')
  const start = (port = 0) => LocalLoop.start({ hostname: '127.0.0.1', ...options, port, dataFolder })
  const testLoop: TestLoop = {
    loop: await start(options.port).catch(async (error: unknown) => {
      await temp.cleanup()
      throw error
    }),
    folder: temp.path,
    dataFolder,
    async restart() {
      await testLoop.loop.stop()
      testLoop.loop = await start(testLoop.loop.port)
      return testLoop.loop
    },
    async cleanup() {
      await testLoop.loop.stop()
      await temp.cleanup()
    },
  }
  return testLoop
}
