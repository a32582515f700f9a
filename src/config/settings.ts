/**
 * Every setting a node reads, with its environment names (first is canonical, the rest aliases),
 * its command-line flag, type, default and help text. One table drives parsing, `--help` and the README.
 * Pure: no I/O, runs under Bun and Deno.
 */
export type SettingType = 'string' | 'boolean' | 'integer' | 'number'

export interface SettingSpec {
  env: readonly string[]
  flag: string
  type: SettingType
  help: string
  /** shown in help; the parsed default is applied by the caller where it needs I/O (data folder) */
  defaultText?: string
}

export const SETTINGS = {
  loopHost: { env: ['LOOP_HOST', 'HOST'], flag: 'loop-host', type: 'string', help: 'Learning Loop host. A bare host uses https only if it contains learning-loop.ai (upstream rule); a URL with a scheme is used as given. Unset: an embedded local loop is started.' },
  username: { env: ['LOOP_USERNAME', 'USERNAME'], flag: 'username', type: 'string', help: 'login name for POST /api/login' },
  password: { env: ['LOOP_PASSWORD', 'PASSWORD'], flag: 'password', type: 'string', help: 'password for POST /api/login' },
  organization: { env: ['LOOP_ORGANIZATION', 'ORGANIZATION'], flag: 'organization', type: 'string', help: 'organization id (lower case)' },
  project: { env: ['LOOP_PROJECT', 'PROJECT'], flag: 'project', type: 'string', help: 'project id (lower case)' },
  sslCertPath: { env: ['LOOP_SSL_CERT_PATH'], flag: 'ssl-cert', type: 'string', help: 'CA bundle (PEM) trusted for every TLS call to the Loop: REST, socket.io, uploads' },
  dataFolder: { env: ['DATA_FOLDER'], flag: 'data', type: 'string', help: 'root of all persisted state', defaultText: '/data if it exists and is writable, else ./data' },
  localLoopPort: { env: ['LOCAL_LOOP_PORT'], flag: 'local-loop-port', type: 'integer', help: 'port of the embedded local loop started when LOOP_HOST is unset (0: any free port)', defaultText: '0' },
  port: { env: ['PORT'], flag: 'port', type: 'integer', help: 'HTTP + socket.io port of this node' },
  hostname: { env: ['BIND_HOST'], flag: 'bind', type: 'string', help: 'address to listen on', defaultText: '0.0.0.0' },
  logLevel: { env: ['LOG_LEVEL'], flag: 'log-level', type: 'string', help: 'debug | info | warn | error', defaultText: 'info' },
  skipRepeatOnStart: { env: ['SKIP_REPEAT_ON_START'], flag: 'skip-repeat-on-start', type: 'boolean', help: 'start with the repeat loop muted until PUT /socketio on', defaultText: 'false' },
  useBackdoorControls: { env: ['USE_BACKDOOR_CONTROLS'], flag: 'backdoor-controls', type: 'boolean', help: 'mount the test-only endpoints (POST /reset …)', defaultText: 'false' },
  requestTimeoutMs: { env: ['LOOP_REQUEST_TIMEOUT_MS'], flag: 'request-timeout-ms', type: 'integer', help: 'timeout of one REST call to the Loop', defaultText: '60000' },
  modelFormat: { env: ['MODEL_FORMAT'], flag: 'model-format', type: 'string', help: 'model format the detector downloads from the Loop (an ONNX model package by default)', defaultText: 'onnx' },
  versionControlDefault: { env: ['VERSION_CONTROL_DEFAULT'], flag: 'version-control', type: 'string', help: 'detector start mode: follow_loop | pause', defaultText: 'follow_loop' },
  syncCycles: { env: ['SYNC_CYCLES'], flag: 'sync-cycles', type: 'integer', help: 'detector status POST every N repeat cycles', defaultText: '6' },
  exclusiveModelBuild: { env: ['EXCLUSIVE_MODEL_BUILD'], flag: 'exclusive-model-build', type: 'boolean', help: 'free the old model before building the new one (less memory, detections rejected meanwhile)', defaultText: 'false' },
  minUncertainThreshold: { env: ['MIN_UNCERTAIN_THRESHOLD'], flag: 'min-uncertain', type: 'number', help: 'lower bound (inclusive) of the uncertain confidence window', defaultText: '0.3' },
  maxUncertainThreshold: { env: ['MAX_UNCERTAIN_THRESHOLD'], flag: 'max-uncertain', type: 'number', help: 'upper bound (inclusive) of the uncertain confidence window', defaultText: '0.6' },
  outboxMaxItems: { env: ['OUTBOX_MAX_ITEMS'], flag: 'outbox-max-items', type: 'integer', help: 'most images waiting in the detector outbox (both queues); a new image then displaces the oldest normal one, counted in lln_outbox_dropped_total', defaultText: '10000' },
  outboxMaxBytes: { env: ['OUTBOX_MAX_BYTES'], flag: 'outbox-max-bytes', type: 'integer', help: 'most bytes (json + jpg) waiting in the detector outbox, enforced like OUTBOX_MAX_ITEMS', defaultText: '2147483648 (2 GiB)' },
  camerasFile: { env: ['CAMERAS_FILE'], flag: 'cameras', type: 'string', help: 'detector: a cameras.json ({"cameras": [{id, url, fps, …}]}) read at start while the data folder holds no cameras.json of its own (changes made through /cameras are kept there)' },
  trainerIdleTimeoutSec: { env: ['TRAINER_IDLE_TIMEOUT_SEC'], flag: 'idle-timeout', type: 'number', help: 'trainer exits after this many idle seconds (0: never)', defaultText: '0' },
  restartAfterTraining: { env: ['RESTART_AFTER_TRAINING'], flag: 'restart-after-training', type: 'boolean', help: 'trainer exits after each training', defaultText: 'false' },
  keepOldTrainings: { env: ['KEEP_OLD_TRAININGS'], flag: 'keep-old-trainings', type: 'boolean', help: 'keep earlier training folders when a new training begins', defaultText: 'false' },
  inferenceBatchSize: { env: ['INFERENCE_BATCH_SIZE'], flag: 'inference-batch-size', type: 'integer', help: 'images per detection batch after training', defaultText: '10' },
  inferenceBackend: { env: ['INFERENCE_BACKEND'], flag: 'backend', type: 'string', help: 'auto (the first that works: cuda, webgpu-native, webgpu, cpu, wasm; on Deno webgpu first) | fastest (all that work, timed on the model) | one of them', defaultText: 'auto' },
  inferenceWorkers: { env: ['INFERENCE_WORKERS'], flag: 'workers', type: 'integer', help: 'inference workers per model version, each with its own session; requests go to the least busy one', defaultText: 'chosen at model load from the usable cores and the model (see Throughput); 1 on a GPU' },
  inferenceThreads: { env: ['INFERENCE_THREADS'], flag: 'threads', type: 'integer', help: 'intra-op threads of the session of each inference worker', defaultText: 'chosen at model load (1–4; see Throughput)' },
  inferenceSpinWait: { env: ['INFERENCE_SPIN_WAIT'], flag: 'spin-wait', type: 'boolean', help: 'let idle onnxruntime threads busy-wait between ops: a little more throughput on a dedicated machine, but it takes cores from the HTTP server and from hot swaps', defaultText: 'false' },
  inferenceBatchWindowMs: { env: ['INFERENCE_BATCH_WINDOW_MS'], flag: 'batch-window-ms', type: 'number', help: 'dynamic batching, for models exported with a dynamic batch axis: how long (ms) an image may wait for concurrent ones to share its session run; 0 turns it off. Unset: 2 on GPU backends, off on cpu and wasm (where a batched run measured no faster per image). Models with a fixed batch of 1 always run one image at a time', defaultText: '2 on GPU backends, off on cpu/wasm' },
  inferenceMaxBatch: { env: ['INFERENCE_MAX_BATCH'], flag: 'max-batch', type: 'integer', help: 'most images in one batched session run; 1 turns dynamic batching off', defaultText: '8' },
  maxImagePixels: { env: ['MAX_IMAGE_PIXELS'], flag: 'max-image-pixels', type: 'integer', help: 'largest image accepted (width × height, read from the JPEG/PNG header before decoding) by /detect, /upload, the socket events and `detect`; larger ones get 422 or {error}. The trainer drops larger training images as corrupt. Memory per image being decoded ≈ pixels × 6 bytes', defaultText: '50000000' },
  ortLibDir: { env: ['ORT_LIB_DIR'], flag: 'ort-lib-dir', type: 'string', help: 'folder with libonnxruntime_providers_{shared,cuda}.so for the CUDA backend' },
} as const satisfies Record<string, SettingSpec>

export type SettingName = keyof typeof SETTINGS
