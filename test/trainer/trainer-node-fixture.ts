import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { loadNodeConfig } from '../../src/config/node-config.ts'
import type { TrainerState } from '../../src/contract/index.ts'
import type { LocalLoop } from '../../src/local-loop/local-loop.ts'
import { testingTrainer } from '../../src/trainer/testing-trainer.ts'
import { TrainerNode, type TrainerTiming } from '../../src/trainer/trainer-node.ts'
import { waitFor } from '../support/temp.ts'

/** Every state of §8.4 a completed training reports, in order, from the node's idle status before it to the one after. */
export const ALL_STATES_IN_ORDER: TrainerState[] = [
  'idle', 'initialized', 'data_downloading', 'data_downloaded', 'train_model_downloading', 'train_model_downloaded', 'running',
  'training_finished', 'confusion_matrix_syncing', 'confusion_matrix_synced', 'train_model_uploading', 'train_model_uploaded',
  'detecting', 'detected', 'detection_uploading', 'ready_for_cleanup', 'idle',
]

/** Short timings so a test training takes seconds; the production defaults are minutes. */
export const TEST_TIMING: TrainerTiming = {
  statusIntervalMs: 200,
  retry: { maxAttempts: 2, baseDelayMs: 50, maxDelayMs: 200 },
  loopWait: { initialMs: 50, maxMs: 300 },
  trainingProcess: { pollMs: 20, syncIntervalMs: 100 },
  executor: { stopGraceMs: 3_000, cancelGraceMs: 500 },
  downloader: { minRequestSpacingMs: 0, progressOutput: null, retryBaseMs: 20 },
}

export interface StartedTrainer {
  node: TrainerNode
  /** calls of the node's exit function (idle timeout, RESTART_AFTER_TRAINING, the Loop's restart) */
  exits: { code: number; reason: string }[]
}

/** A TrainerNode with the testing trainer, connected to `loop`, on 127.0.0.1; `env` adds settings (KEEP_OLD_TRAININGS …). */
export async function startTrainer(loop: LocalLoop, dataFolder: string, env: Record<string, string> = {}, timing: TrainerTiming = TEST_TIMING): Promise<StartedTrainer> {
  const exits: StartedTrainer['exits'] = []
  const config = loadNodeConfig({ LOOP_HOST: loop.url, PORT: '0', BIND_HOST: '127.0.0.1', ...env })
  const node = await TrainerNode.start({
    config, dataFolder, timing,
    logic: testingTrainer({ executor: timing.executor }),
    exit: (code, reason) => void exits.push({ code, reason }),
  })
  await waitFor(() => node.loop.connected, 10_000, 'the trainer connected to the loop')
  // the loop learns the node's uuid from its first status: until then it cannot be addressed by it
  await waitFor(() => loop.connectedNodes().some((n) => n.nodeId === node.uuid), 10_000, 'the loop to know the trainer by its uuid')
  return { node, exits }
}

/** The states the Loop received from `nodeId` through update_trainer, repeats collapsed. */
export function reportedStates(loop: LocalLoop, nodeId: string): string[] {
  const states: string[] = []
  for (const entry of loop.statusHistory(nodeId)) {
    const state = (entry.status as { state: string }).state
    if (states.at(-1) !== state) states.push(state)
  }
  return states
}

/** update_trainer statuses received from `nodeId`, oldest first. */
export function reportedStatuses(loop: LocalLoop, nodeId: string): { state: string; errors: Record<string, string> | null; context: unknown }[] {
  return loop.statusHistory(nodeId).map((entry) => entry.status as { state: string; errors: Record<string, string> | null; context: unknown })
}

/** Waits until the active training of `node` is in `state`. */
export function waitForTrainingState(node: TrainerNode, state: TrainerState, timeoutMs = 20_000): Promise<boolean> {
  return waitFor(() => node.supervisor.status().state === state, timeoutMs, `training state ${state} (now ${node.supervisor.status().state})`)
}

/** Waits until the training log holds a line matching `pattern` (e.g. an epoch, so the program's SIGTERM handler is in place). */
export async function waitForLogLine(trainingFolder: string, pattern: RegExp, timeoutMs = 10_000): Promise<string> {
  return waitFor(async () => {
    const log = await readFile(join(trainingFolder, 'last_training.log'), 'utf8').catch(() => '')
    return log.split('\n').find((line) => pattern.test(line))
  }, timeoutMs, `a line ${pattern} in the training log`)
}

/** The pid the testing trainer reported for the grandchild it started (from the training log). */
export async function grandchildPid(trainingFolder: string, timeoutMs = 10_000): Promise<number> {
  return waitFor(async () => {
    const log = await readFile(join(trainingFolder, 'last_training.log'), 'utf8').catch(() => '')
    const match = /\{"grandchild_pid":(\d+)\}/.exec(log)
    return match ? Number(match[1]) : undefined
  }, timeoutMs, 'the grandchild pid in the training log')
}

/** Image ids of a project by whether the Loop holds trainer detections for them. */
export function trainerDetectionCoverage(loop: LocalLoop, organization: string, project: string): { with: number; without: number } {
  const images = loop.listImages(organization, project).filter((i) => i.state !== 'trash')
  const withDetections = images.filter((i) => i.has_trainer_detections).length
  return { with: withDetections, without: images.length - withDetections }
}
