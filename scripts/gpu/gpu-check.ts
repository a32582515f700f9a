// Device check, not part of the product: runs every backend on a real GPU and prints one JSON line per result.
//   A. raw sessions — create time, first run, median run, max |Δ| against the CPU — for each ONNX file given;
//   B. the whole pipeline (decode → preprocess → inference → decode+NMS in the Worker) on the built-in face model
//      with a real photo, per backend: detections compared with the CPU's, latency per stage;
//   C. what `auto` picks on this machine and why it rejected the others.
// Usage: bun scripts/gpu/gpu-check.ts [model.onnx ...]
import { createBackendSession } from '../../src/inference/backend-sessions.ts'
import { findMismatch } from '../../src/inference/backend-verification.ts'
import { createInferenceEngine } from '../../src/inference/inference-engine.ts'
import type { BackendName } from '../../src/config/inference-settings.ts'
import { readOnnxModelHeader } from '../../src/inference/onnx-model-header.ts'
import { builtinModelDir } from '../../src/inference/builtin-model.ts'

const GPU_BACKENDS = (process.env.BACKENDS?.split(',') ?? ['cuda', 'webgpu-native', 'webgpu']) as BackendName[]
const ortLibDir = process.env.ORT_LIB_DIR || undefined
const threads = Number(process.env.CPU_THREADS) || navigator.hardwareConcurrency
const runs = Number(process.env.RUNS) || 30
const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!
const p90 = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length * 0.9)]!
const print = (o: unknown) => console.log(JSON.stringify(o))
const round = (x: number) => +x.toFixed(3)

async function rawSessions(file: string): Promise<void> {
  const bytes = new Uint8Array(await Bun.file(file).arrayBuffer())
  const input = readOnnxModelHeader(bytes).inputs[0]!
  const dims = input.dims.map((d) => (typeof d === 'number' && d > 0 ? d : 1))
  const data = Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => ((i * 7919) % 1000) / 1000)
  let reference: Float32Array | undefined
  for (const backend of ['cpu', ...GPU_BACKENDS] as BackendName[]) {
    try {
      const t0 = performance.now()
      const session = await createBackendSession(backend, bytes, { threads, ortLibDir })
      const createMs = performance.now() - t0
      const t1 = performance.now()
      let out = await session.run(input.name, data, dims)
      const firstRunMs = performance.now() - t1
      for (let i = 0; i < 3; i++) out = await session.run(input.name, data, dims)
      const times: number[] = []
      for (let i = 0; i < runs; i++) {
        const t = performance.now()
        out = await session.run(input.name, data, dims)
        times.push(performance.now() - t)
      }
      const values = Float32Array.from(Object.values(out)[0]!.data)
      if (backend === 'cpu') reference = values
      let maxAbsDiff = 0
      let maxAbsRef = 0
      if (reference) for (let i = 0; i < values.length; i++) {
        maxAbsDiff = Math.max(maxAbsDiff, Math.abs(values[i]! - reference[i]!))
        maxAbsRef = Math.max(maxAbsRef, Math.abs(reference[i]!))
      }
      print({ part: 'raw', model: file.split('/').pop(), backend, ok: true, createMs: Math.round(createMs), firstRunMs: Math.round(firstRunMs),
        medianMs: round(median(times)), p90Ms: round(p90(times)), maxAbsDiffVsCpu: maxAbsDiff, maxAbsCpu: maxAbsRef,
        mismatch: reference ? findMismatch(values, reference) ?? null : null })
      await session.release()
    } catch (error) {
      print({ part: 'raw', model: file.split('/').pop(), backend, ok: false, error: (error as Error).message.slice(0, 500) })
    }
  }
}

async function pipeline(modelDir: string, photo: string): Promise<void> {
  const jpeg = new Uint8Array(await Bun.file(photo).arrayBuffer())
  let cpuBoxes: number[][] | undefined
  for (const backend of ['cpu', ...GPU_BACKENDS] as BackendName[]) {
    try {
      const t0 = performance.now()
      const engine = await createInferenceEngine({ modelDir, backend, threads, ortLibDir, verify: true, imageDecoder: process.env.IMAGE_DECODER === 'native' ? 'native' : 'portable' })
      const createMs = performance.now() - t0
      let output = await engine.detect({ kind: 'encoded', bytes: jpeg })
      const totals: number[] = []
      const inference: number[] = []
      for (let i = 0; i < runs; i++) {
        const t = performance.now()
        output = await engine.detect({ kind: 'encoded', bytes: jpeg })
        totals.push(performance.now() - t)
        inference.push(output.timings.inferenceMs)
      }
      const boxes = output.box_detections.map((b) => [b.x, b.y, b.width, b.height, b.confidence])
      if (backend === 'cpu') cpuBoxes = boxes
      const sameAsCpu = cpuBoxes !== undefined && cpuBoxes.length === boxes.length &&
        boxes.every((b, i) => b.every((v, j) => Math.abs(v - cpuBoxes![i]![j]!) <= (j === 4 ? 0.02 : 2)))
      print({ part: 'pipeline', model: engine.modelInfo.version, backend: engine.backend, createMs: Math.round(createMs),
        medianTotalMs: round(median(totals)), p90TotalMs: round(p90(totals)), medianInferenceMs: round(median(inference)),
        timings: output.timings, boxes, points: output.point_detections.length, sameAsCpu })
      await engine.dispose()
    } catch (error) {
      print({ part: 'pipeline', backend, ok: false, error: (error as Error).message.slice(0, 500) })
    }
  }
}

for (const file of process.argv.slice(2)) await rawSessions(file)
await pipeline(builtinModelDir(), 'test/fixtures/astronaut.jpg')
// `auto` takes the first backend that works; `fastest` times them all on the model (the choice to check on a GPU)
for (const choice of ['auto', 'fastest'] as const) {
  try {
    const engine = await createInferenceEngine({ modelDir: builtinModelDir(), backend: choice, ortLibDir, imageDecoder: 'portable' })
    print({ part: choice, chosen: engine.backend, rejected: engine.rejected })
    await engine.dispose()
  } catch (error) {
    print({ part: choice, ok: false, error: (error as Error).message })
  }
}
process.exit(0)
