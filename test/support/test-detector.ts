import { io as connect, type Socket } from 'socket.io-client'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import { SOCKET_IO_PATH } from '../../src/contract/socket-io.ts'
import { DetectorNode, type DetectorNodeOptions } from '../../src/detector/detector-node.ts'
import { waitFor } from './temp.ts'

/**
 * A DetectorNode for tests, resolved once /ready answers: the built-in face model on one worker with one CPU thread, on a free port
 * of 127.0.0.1, following local/demo of the Loop at `loopUrl` and uploading every 250 ms. `env` adds or overrides settings,
 * `options` the node's (a model factory, say).
 */
export async function startTestDetector(loopUrl: string, dataFolder: string, env: Record<string, string> = {}, options: Omit<Partial<DetectorNodeOptions>, 'config'> = {}): Promise<DetectorNode> {
  const config = loadNodeConfig({
    LOOP_HOST: loopUrl, LOOP_ORGANIZATION: 'local', LOOP_PROJECT: 'demo', DATA_FOLDER: dataFolder,
    PORT: '0', BIND_HOST: '127.0.0.1', INFERENCE_BACKEND: 'cpu', INFERENCE_WORKERS: '1', INFERENCE_THREADS: '1', ...env,
  })
  const node = await DetectorNode.start({ outbox: { intervalMs: 250 }, ...options, config })
  try {
    await waitFor(async () => (await fetch(`${node.url}/ready`)).ok, 30_000, 'detector ready')
  } catch (error) {
    await node.stop()
    throw error
  }
  return node
}

/** A socket.io client of the detector at `url`, connected as rosys connects: WebSocket only, on the Engine.IO path of §5.5. */
export async function connectDetectorClient(url: string): Promise<Socket> {
  const client = connect(url, { path: SOCKET_IO_PATH, transports: ['websocket'] })
  try {
    await waitFor(() => client.connected, 10_000, 'socket connected')
  } catch (error) {
    client.close()
    throw error
  }
  return client
}
