import type { RunningServer } from './http-server.ts'
import type { LoopConnection } from './loop-connection.ts'
import type { NodeRuntime } from './node-runtime.ts'

/**
 * What the annotator and converter nodes share around their NodeRuntime: the Loop connection (opened after
 * construction, by their `create`), and start / shutdown.
 */
export abstract class LoopNode {
  abstract readonly runtime: NodeRuntime
  protected loopConnection: LoopConnection | undefined

  /** The link to the Loop (REST, and socket.io where the node uses it). */
  get connection(): LoopConnection {
    if (!this.loopConnection) throw new Error('the node is not connected to a Loop yet')
    return this.loopConnection
  }

  start(): Promise<RunningServer> {
    return this.runtime.start()
  }

  shutdown(reason?: string): Promise<void> {
    return this.runtime.shutdown(reason)
  }
}
