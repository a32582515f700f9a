/**
 * Before a GPU backend is trusted, it runs a tiny committed model (verification-model.onnx, made by
 * scripts/make-test-models.ts) on a fixed input and must agree with the CPU. A driver that computes
 * garbage is then rejected with a reason instead of quietly producing wrong detections.
 */
import { fileURLToPath } from 'node:url'
import { readFile } from 'node:fs/promises'
import type { BackendName } from '../config/inference-settings.ts'
import { createBackendSession, type BackendSessionOptions } from './backend-sessions.ts'
import { EMBEDDED_ASSETS } from '../foundation/embedded-assets.ts'

export const VERIFICATION_INPUT_NAME = 'input'
export const VERIFICATION_INPUT_DIMS = [1, 3, 16, 16]
const ABSOLUTE_TOLERANCE = 2e-3
const RELATIVE_TOLERANCE = 1e-3
const verificationModelPath = EMBEDDED_ASSETS?.verificationModel.path ?? fileURLToPath(new URL('./verification-model.onnx', import.meta.url))

/** The fixed input (values in 0–1), from a seeded Park–Miller generator. */
export function verificationInput(): Float32Array {
  let state = 7
  const count = VERIFICATION_INPUT_DIMS.reduce((a, b) => a * b, 1)
  return Float32Array.from({ length: count }, () => {
    state = (state * 16807) % 2147483647
    return (state - 1) / 2147483646
  })
}

/** Largest element-wise difference beyond tolerance, or undefined when `actual` matches `expected`. */
export function findMismatch(actual: Float32Array, expected: Float32Array): string | undefined {
  if (actual.length !== expected.length) return `output has ${actual.length} values, the CPU reference ${expected.length}`
  let worst = 0
  let worstIndex = -1
  for (let i = 0; i < expected.length; i++) {
    const difference = Math.abs(actual[i]! - expected[i]!)
    if (!(difference <= ABSOLUTE_TOLERANCE + RELATIVE_TOLERANCE * Math.abs(expected[i]!)) && !(difference < worst)) {
      worst = difference
      worstIndex = i
    }
  }
  if (worstIndex < 0) return undefined
  return `value ${worstIndex} is ${actual[worstIndex]} on this backend but ${expected[worstIndex]} on the CPU (difference ${Number.isNaN(worst) ? 'NaN' : worst.toExponential(2)})`
}

async function runVerificationModel(backend: BackendName, model: Uint8Array, options: BackendSessionOptions): Promise<Float32Array> {
  const session = await createBackendSession(backend, model, options)
  try {
    const outputs = await session.run(VERIFICATION_INPUT_NAME, verificationInput(), VERIFICATION_INPUT_DIMS)
    const first = Object.values(outputs)[0]
    if (!first) throw new Error('the verification model returned no output')
    return Float32Array.from(first.data)
  } finally {
    await session.release()
  }
}

/** Throws when `backend` disagrees with the CPU (onnxruntime-node, else wasm) on the verification model. */
export async function verifyAgainstCpu(backend: BackendName, options: BackendSessionOptions): Promise<void> {
  const model = new Uint8Array(await readFile(verificationModelPath))
  let reference: Float32Array
  try {
    reference = await runVerificationModel('cpu', model, options)
  } catch {
    reference = await runVerificationModel('wasm', model, options)
  }
  const actual = await runVerificationModel(backend, model, options)
  const mismatch = findMismatch(actual, reference)
  if (mismatch) throw new Error(`disagrees with the CPU on the verification model: ${mismatch}`)
}
