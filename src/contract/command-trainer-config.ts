import { Type, type Static } from '@sinclair/typebox'
import { PretrainedModel } from './general.ts'

/**
 * Configuration of the command trainer (a JSON file, e.g. `--trainer-config trainer.json`): a trainer defined
 * by command templates instead of code. Placeholders and the stdout protocol are documented in
 * src/trainer/command-trainer.ts.
 */
export const CommandTrainerConfig = Type.Object({
  /** the model format the training produces and the Loop stores, e.g. `onnx`, `yolov5_pytorch` */
  model_format: Type.String({ minLength: 1 }),
  /** training from scratch */
  command: Type.String({ minLength: 1 }),
  /** training from a base model; defaults to `command` */
  base_model_command: Type.Optional(Type.String({ minLength: 1 })),
  /** continuing after an interruption, with {checkpoint}; without it a training restarts from the beginning */
  resume_command: Type.Optional(Type.String({ minLength: 1 })),
  /** detections on images with the trained model ({model_folder}, {images_list}); without it no detections are made */
  detect_command: Type.Optional(Type.String({ minLength: 1 })),
  /** extra environment for the commands */
  env: Type.Optional(Type.Record(Type.String(), Type.String(), { default: {} })),
  model_architecture: Type.Optional(Type.Union([Type.String(), Type.Null()], { default: null })),
  pretrained_models: Type.Optional(Type.Array(PretrainedModel, { default: [] })),
  /** regular expressions; an output line matching one is reported as the training's error */
  error_patterns: Type.Optional(Type.Array(Type.String(), { default: [] })),
}, { $id: 'CommandTrainerConfig' })
export type CommandTrainerConfig = Static<typeof CommandTrainerConfig>
