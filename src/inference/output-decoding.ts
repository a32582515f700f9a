/** Raw model outputs → §6.3 detections, for either decoder family. Pure. */
import { decodeBlazeFace } from './blazeface-decoding.ts'
import { mapCandidates, type MappedDetections } from './detection-mapping.ts'
import type { ImageGeometry } from './image-preprocessing.ts'
import type { ModelSpec } from './model-spec.ts'
import { greedyNonMaxSuppression, weightedNonMaxSuppression, type Candidate } from './non-max-suppression.ts'
import { decodeYoloOutput, detectYoloLayout } from './yolo-decoding.ts'
import { quoteInput } from '../foundation/log.ts'

export interface RawOutput {
  data: Float32Array
  dims: number[]
}

function requireOutput(outputs: Record<string, RawOutput>, name: string | undefined): RawOutput {
  // the name comes from the model package: `constructor` must not find Object's
  const output = name === undefined || !Object.hasOwn(outputs, name) ? undefined : outputs[name]
  if (!output) throw new Error(`the model did not return its output ${quoteInput(name)} (got ${Object.keys(outputs).join(', ')})`)
  return output
}

/** Candidates after NMS, in network-input pixels. */
export function decodeCandidates(spec: ModelSpec, outputs: Record<string, RawOutput>): Candidate[] {
  const { confidenceThreshold, iouThreshold, maxDetections } = spec
  let candidates: Candidate[]
  if (spec.decoder === 'blazeface') {
    candidates = decodeBlazeFace(
      spec.blazeFaceOutputs.map((o) => ({ anchors: o.anchors, scores: requireOutput(outputs, o.scores).data, regressors: requireOutput(outputs, o.regressors).data })),
      spec.preprocessing.width, spec.preprocessing.height, confidenceThreshold,
    )
  } else {
    const output = requireOutput(outputs, spec.yoloOutput)
    const shape = detectYoloLayout(output.dims, spec.categories.length, spec.yoloLayout)
    candidates = decodeYoloOutput(output.data, shape, confidenceThreshold)
  }
  return spec.nms === 'weighted'
    ? weightedNonMaxSuppression(candidates, iouThreshold, maxDetections)
    : greedyNonMaxSuppression(candidates, iouThreshold, maxDetections)
}

export function decodeDetections(spec: ModelSpec, outputs: Record<string, RawOutput>, geometry: ImageGeometry): MappedDetections {
  return mapCandidates(decodeCandidates(spec, outputs), {
    categories: spec.categories,
    keypointCategories: spec.keypointCategories,
    modelName: spec.modelName,
    geometry,
  })
}
