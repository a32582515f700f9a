/**
 * What the inference settings may say (INFERENCE_BACKEND, MAX_IMAGE_PIXELS): facts of the configuration that
 * config/ checks and inference/ acts on. Pure.
 */

export const BACKEND_NAMES = ['webgpu', 'webgpu-native', 'cuda', 'cpu', 'wasm'] as const
export type BackendName = (typeof BACKEND_NAMES)[number]
/** `auto`: the first backend of AUTO_BACKEND_CHAIN that works; `fastest`: every one that works, timed, the fastest kept */
export type BackendChoice = 'auto' | 'fastest' | BackendName
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'fastest', ...BACKEND_NAMES]

/** The default of MAX_IMAGE_PIXELS: 50 MP (e.g. 8660×5773), ~150 MB as RGB. */
export const DEFAULT_MAX_IMAGE_PIXELS = 50_000_000

/**
 * Dynamic batching (models whose input has a symbolic batch dimension): how long the first waiting image may wait
 * for others before its run starts, and the most images in one run. A window of 0 or a batch of 1 turns it off.
 * Unset, the window applies on GPU backends only: on the CPU one run of N images measured no faster per image than
 * N runs (a 320×320 conv net on 2 cores: 1.2 ms per image at batch 8, 1.0 ms alone), so there it only adds waiting.
 */
export const DEFAULT_BATCH_WINDOW_MS = 2
export const DEFAULT_MAX_BATCH = 8
