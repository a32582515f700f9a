import { readFile, writeFile, mkdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { Training } from '../../src/contract/index.ts'
import type { StepContext, TrainerSteps, TrainingUpdate } from '../../src/trainer/training-runner.ts'
import type { StepName, TrainingOutcome } from '../../src/trainer/training-state-machine.ts'
import { StepCancelledError } from '../../src/trainer/training-errors.ts'

export type StepBehaviour = (training: Training, ctx: StepContext) => Promise<TrainingUpdate | void>

export interface StepCall {
  step: StepName
  attempt: number
  /** training_state of the last-training file on disk when the step started (undefined: no file) */
  persistedState: string | undefined
}

/** Resolves when `signal` fires. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener('abort', () => resolve(), { once: true })))
}

/**
 * In-process steps that do small real work (write files into the training folder), record every call together
 * with what the last-training file held at that moment, and can be overridden per step.
 */
export class RecordingSteps implements TrainerSteps {
  readonly calls: StepCall[] = []
  readonly cleanups: { outcome: TrainingOutcome; errors: Record<string, string>; state: string }[] = []
  private readonly overrides = new Map<StepName, StepBehaviour>()

  constructor(private readonly lastTrainingPath: string) {}

  on(step: StepName, behaviour: StepBehaviour): this {
    this.overrides.set(step, behaviour)
    return this
  }

  called(): StepName[] {
    return this.calls.map((c) => c.step)
  }

  private async persistedState(): Promise<string | undefined> {
    try {
      return JSON.parse(await readFile(this.lastTrainingPath, 'utf8')).training_state
    } catch {
      return undefined
    }
  }

  private async record(step: StepName, training: Training, ctx: StepContext, fallback: StepBehaviour): Promise<TrainingUpdate | void> {
    this.calls.push({ step, attempt: ctx.attempt, persistedState: await this.persistedState() })
    if (ctx.signal.aborted) throw new StepCancelledError()
    const behaviour = this.overrides.get(step) ?? fallback
    return behaviour(training, ctx)
  }

  prepare(training: Training, ctx: StepContext) {
    return this.record('prepare', training, ctx, async (t) => {
      await mkdir(t.images_folder, { recursive: true })
      await writeFile(join(t.images_folder, 'img1.jpg'), 'jpeg')
      return { image_data: [{ id: 'img1', set: 'train', width: 10, height: 10, box_annotations: [], point_annotations: [] }], skipped_image_count: 0 }
    })
  }
  downloadModel(training: Training, ctx: StepContext) {
    return this.record('download_model', training, ctx, async () => {})
  }
  runTraining(training: Training, ctx: StepContext) {
    return this.record('run_training', training, ctx, async (t) => {
      await writeFile(join(t.training_folder, 'model.bin'), 'weights')
    })
  }
  syncConfusionMatrix(training: Training, ctx: StepContext) {
    return this.record('sync_confusion_matrix', training, ctx, async () => {})
  }
  uploadModel(training: Training, ctx: StepContext) {
    return this.record('upload_model', training, ctx, async () => ({ model_uuid_for_detecting: '00000000-0000-0000-0000-0000000000aa' }))
  }
  detect(training: Training, ctx: StepContext) {
    return this.record('detecting', training, ctx, async (_t, c) => {
      await c.files.saveDetections(0, [{ image_id: 'img1', box_detections: [], point_detections: [], segmentation_detections: [], classification_detections: [] }])
    })
  }
  uploadDetections(training: Training, ctx: StepContext) {
    return this.record('upload_detections', training, ctx, async (_t, c) => {
      await c.files.writeDetectionUploadIndex(1)
    })
  }
  async cleanup(training: Training, ctx: StepContext & { outcome: TrainingOutcome; errors: Record<string, string> }): Promise<void> {
    this.cleanups.push({ outcome: ctx.outcome, errors: ctx.errors, state: String(training.training_state) })
  }
}

