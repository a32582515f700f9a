#!/usr/bin/env bun
/**
 * A training program for the command trainer that shows the plumbing of the whole loop without a GPU: it
 * "trains" by taking its base model (the model the Loop handed over, else the built-in BlazeFace face detector)
 * as the result, and detects with the trained model through this package's inference engine. Replace the
 * `train` part with a real training; the protocol stays the same (src/trainer/trainer-output-protocol.ts).
 *
 *   bun face-trainer.ts train TRAINING_FILE [BASE_MODEL_DIR]   writes model.onnx + model.json into the working
 *                                                             directory (the training folder) and reports them
 *   bun face-trainer.ts detect MODEL_FOLDER IMAGES_LIST       one {"detections": …} line per listed image
 *
 * Used by trainer.json beside it: `learning-loop-node trainer --trainer-config examples/face-trainer/trainer.json`.
 * It uses only web standards and `node:` built-ins, so it runs under a trainer on Bun or on Deno (`{bun}`).
 */
import { copyFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs'
import { basename, join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import { builtinModelDir, createInferenceEngine } from '../../src/index.ts'

const say = (message: Record<string, unknown>) => console.log(JSON.stringify(message))

interface TrainingFile {
  categories: { id: string; name: string }[]
  /** epochs (default 1) and epoch_ms, a pause per epoch that stands in for the work (default 0) */
  hyperparameters: { epochs?: number; epoch_ms?: number }
  image_data: { id: string; file: string; box_annotations?: { category_id?: string }[] }[]
}

async function train(trainingFile: string, baseModelDir: string | undefined): Promise<void> {
  const training = JSON.parse(readFileSync(trainingFile, 'utf8')) as TrainingFile
  // the base model's model.json: beside the training folder as base_model.json (see the command trainer), or the
  // built-in model's own
  const fromLoop = baseModelDir && existsSync(join(baseModelDir, 'model.onnx'))
  const modelDir = fromLoop ? baseModelDir : builtinModelDir()
  const description = JSON.parse(readFileSync(fromLoop ? join(baseModelDir, '..', 'base_model.json') : join(modelDir, 'model.json'), 'utf8')) as Record<string, unknown>
  const epochs = Math.max(1, Number(training.hyperparameters.epochs ?? 1))
  const epochMs = Math.max(0, Number(training.hyperparameters.epoch_ms ?? 0))
  for (let epoch = 1; epoch <= epochs; epoch++) {
    await sleep(epochMs)
    say({ progress: epoch / epochs })
    // a real program reports what it measured on the test set; every annotated box counts as found here
    const confusion = Object.fromEntries(training.categories.map((category) => {
      const boxes = training.image_data.flatMap((image) => image.box_annotations ?? []).filter((box) => box.category_id === category.id).length
      return [category.id, { tp: boxes, fp: 0, fn: 0 }]
    }))
    say({ epoch, confusion_matrix: confusion })
  }
  copyFileSync(join(modelDir, 'model.onnx'), 'model.onnx')
  // what the detector needs to run the model: the inference section, categories, resolution. The Loop sets
  // id, version, organization, project and format itself when it stores the upload.
  const { categories, resolution, inference } = description
  writeFileSync('model.json', JSON.stringify({ categories, resolution, inference }, null, 2))
  say({ model_files: { onnx: ['model.onnx', 'model.json'] } })
}

async function detect(modelFolder: string, imagesList: string): Promise<void> {
  const engine = await createInferenceEngine({ modelDir: modelFolder })
  try {
    for (const path of readFileSync(imagesList, 'utf8').split('\n').filter(Boolean)) {
      const output = await engine.detect({ kind: 'encoded', bytes: new Uint8Array(readFileSync(path)) })
      say({
        detections: {
          // the file's stem; the trainer maps it back to the Loop's image id
          image_id: basename(path).replace(/\.jpg$/, ''),
          box_detections: output.box_detections,
          point_detections: output.point_detections,
          segmentation_detections: output.segmentation_detections,
          classification_detections: output.classification_detections,
        },
      })
    }
  } finally {
    await engine.dispose()
  }
}

const [mode, ...rest] = process.argv.slice(2)
if (mode === 'train' && rest[0]) await train(rest[0], rest[1] || undefined)
else if (mode === 'detect' && rest[0] && rest[1]) await detect(rest[0], rest[1])
else {
  say({ error: `usage: face-trainer.ts train TRAINING_FILE [BASE_MODEL_DIR] | detect MODEL_FOLDER IMAGES_LIST (got ${JSON.stringify(process.argv.slice(2))})` })
  process.exit(2)
}
