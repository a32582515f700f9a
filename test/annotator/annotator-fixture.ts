/** A local loop with the coffee photo, and an annotator node connected to it. */
import { join, resolve } from 'node:path'
import { AnnotatorNode } from '../../src/annotator/annotator-node.ts'
import { BoxSegmentationTool } from '../../src/annotator/box-segmentation-tool.ts'
import { createInProcessSegmenter } from '../../src/annotator/segmenter.ts'
import type { AnnotatorLogic } from '../../src/annotator/annotator-logic.ts'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { waitFor } from '../support/temp.ts'
import { startTestLoop } from '../support/test-loop.ts'

export const ORG = 'zauberzeug'
export const PROJECT = 'pytest_nodelib_annotator'
export const COFFEE_ID = '10f7d7d2-4076-7006-af37-fa28a6a848ae'
export const COFFEE_PATH = resolve(import.meta.dir, '../fixtures/coffee.jpg')
const USER = { username: 'annotator-user', password: 'annotator-secret' }

export interface AnnotatorFixture {
  loop: LocalLoop
  node: AnnotatorNode
  dataFolder: string
  cleanup(): Promise<void>
}

/** Puts `jpeg` into the loop under `id` (as a Loop user's upload would; the outbox route assigns ids of its own). */
export async function uploadPhoto(loop: LocalLoop, id: string, jpeg: Uint8Array): Promise<void> {
  await loop.addImage(ORG, PROJECT, { id, jpeg, tags: ['annotator-test'] })
}

export async function startAnnotator(options: { logic?: AnnotatorLogic<any>; sessionIdleTimeoutMs?: number; repeatIntervalMs?: number } = {}): Promise<AnnotatorFixture> {
  const testLoop = await startTestLoop({ seedProject: false, ...USER })
  const loop = testLoop.loop
  await loop.createProject(ORG, { project_name: PROJECT, segmentation_categories: 1 })
  await uploadPhoto(loop, COFFEE_ID, await Bun.file(COFFEE_PATH).bytes())
  const dataFolder = join(testLoop.folder, 'node')
  const config = loadNodeConfig({ LOOP_HOST: loop.url, LOOP_USERNAME: USER.username, LOOP_PASSWORD: USER.password, LOOP_ORGANIZATION: ORG, LOOP_PROJECT: PROJECT })
  const node = await AnnotatorNode.create({
    name: 'annotator test node', uuid: crypto.randomUUID(), config, dataFolder, port: 0, hostname: '127.0.0.1',
    logic: options.logic ?? new BoxSegmentationTool({ segmenter: createInProcessSegmenter() }),
    repeatIntervalMs: options.repeatIntervalMs ?? 200, sessionIdleTimeoutMs: options.sessionIdleTimeoutMs,
  })
  await node.start()
  await waitFor(() => loop.connectedNodes().some((n) => n.nodeType === 'annotation_node'), 10_000, 'the annotator to connect')
  return {
    loop, node, dataFolder,
    async cleanup() {
      await node.shutdown()
      await testLoop.cleanup()
    },
  }
}

export const annotatorSelector = (n: { nodeType: string }) => n.nodeType === 'annotation_node'

/** A user input as the Loop forwards it (§6.6). */
export function userInput(frontendId: string, eventType: string, x: number, y: number, extra: Record<string, unknown> = {}, imageUuid = COFFEE_ID): Record<string, unknown> {
  return {
    frontend_id: frontendId,
    data: {
      coordinate: { x, y }, event_type: eventType, context: { organization: ORG, project: PROJECT }, image_uuid: imageUuid,
      category: { id: 'category-cup', name: 'cup', color: '#ff8800', type: 'segmentation' },
      key_up: null, key_down: null, epsilon: null, is_shift_key_pressed: null, ...extra,
    },
  }
}
