import { Detections, TrainingStateData, tryDecode } from '../contract/index.ts'

/**
 * The command-trainer protocol: a training (or detection) program reports through JSON objects, one per line,
 * on stdout or stderr. Every other line is ordinary log output. Keys (several may share one line; unknown keys
 * are ignored, so programs can add their own):
 *
 *   {"progress": 0.4}                                   training progress, 0–1 (null = unknown)
 *   {"epoch": 3, "confusion_matrix": {"<category uuid>": {"tp": 5, "fp": 1, "fn": 2}},
 *    "meta_information": {...}}                        a new BEST training state, synced to the Loop
 *   {"model_files": {"onnx": ["best.onnx", "model.json"]}}
 *   {"model_files": ["best.pt"]}                        the latest model files, per format or for the trainer's
 *                                                       own format; paths relative to the training folder
 *   {"checkpoint": "weights/last.pt"}                   a resumable checkpoint (enables the resume command)
 *   {"error": "CUDA out of memory"}                     the training failed; the step fails with this (first) message
 *   {"detections": {"image_id": "…", "box_detections": [...], ...}}   one image's detections (detect command)
 *
 * Pure: `applyProtocolLine` folds a line into the state; the caller owns the state.
 */

export interface TrainerOutputState {
  progress: number | null
  /** the newest best state not yet accepted by the Loop */
  pendingState: TrainingStateData | null
  modelFiles: string[] | Record<string, string[]> | null
  checkpoint: string | null
  error: string | null
  detections: Detections[]
  /** protocol lines that could not be understood (reported once each in the log) */
  invalidLines: string[]
}

export function emptyOutputState(): TrainerOutputState {
  return { progress: null, pendingState: null, modelFiles: null, checkpoint: null, error: null, detections: [], invalidLines: [] }
}

const MAX_INVALID_KEPT = 20

function isStringList(value: unknown): value is string[] {
  return Array.isArray(value) && value.every((v) => typeof v === 'string' && v.length > 0)
}

function parseModelFiles(value: unknown): string[] | Record<string, string[]> | undefined {
  if (isStringList(value)) return value
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    const entries = Object.entries(value)
    if (entries.length > 0 && entries.every(([, files]) => isStringList(files))) return Object.fromEntries(entries) as Record<string, string[]>
  }
  return undefined
}

/** The JSON object on a line, or undefined when the line is ordinary output. */
export function parseProtocolLine(line: string): Record<string, unknown> | undefined {
  const text = line.trim()
  if (!text.startsWith('{') || !text.endsWith('}')) return undefined
  try {
    const value: unknown = JSON.parse(text)
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined
  } catch {
    return undefined
  }
}

/** Folds one output line into `state` (mutating it); returns true when the line was a protocol line. */
export function applyProtocolLine(state: TrainerOutputState, line: string): boolean {
  const message = parseProtocolLine(line)
  if (!message) return false
  const complain = (why: string) => {
    if (state.invalidLines.length < MAX_INVALID_KEPT) state.invalidLines.push(`${why}: ${line.trim().slice(0, 200)}`)
  }
  if ('progress' in message) {
    const p = message.progress
    if (p === null) state.progress = null
    else if (typeof p === 'number' && Number.isFinite(p)) state.progress = Math.min(1, Math.max(0, p))
    else complain('progress is not a number')
  }
  if ('confusion_matrix' in message) {
    const decoded = tryDecode(TrainingStateData, {
      confusion_matrix: message.confusion_matrix,
      meta_information: message.meta_information ?? {},
      epoch: message.epoch ?? null,
    })
    if (decoded.ok) state.pendingState = decoded.value
    else complain(decoded.error.message)
  }
  if ('model_files' in message) {
    const files = parseModelFiles(message.model_files)
    if (files) state.modelFiles = files
    else complain('model_files is neither a list of paths nor {format: [paths]}')
  }
  if ('checkpoint' in message) {
    if (typeof message.checkpoint === 'string' && message.checkpoint) state.checkpoint = message.checkpoint
    else complain('checkpoint is not a path')
  }
  // the first error is kept: later ones are usually consequences of it
  if ('error' in message && message.error !== null && message.error !== undefined && state.error === null) {
    state.error = typeof message.error === 'string' ? message.error : JSON.stringify(message.error)
  }
  if ('detections' in message) {
    const decoded = tryDecode(Detections, message.detections)
    if (decoded.ok) state.detections.push(decoded.value)
    else complain(decoded.error.message)
  }
  return true
}
