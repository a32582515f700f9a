/**
 * learning-loop-node as a library for other Bun apps: `import { DetectorNode, … } from 'learning-loop-node'`.
 *
 * - Nodes: DetectorNode (bring a DetectorLogicFactory), AnnotatorNode (an AnnotatorLogic), ConverterNode
 *   (a ConverterLogic), the trainer framework (a TrainerLogic), and LocalLoop, an embedded Learning Loop.
 * - Inference: createInferenceEngine (ONNX model packages in a Worker; webgpu → cuda → cpu → wasm).
 * - Contract: every wire/disk shape as a TypeBox schema and a type of the same name, plus `decode`.
 * - Config, the Loop client, and the node runtime pieces (logger, metrics, HTTP + socket.io server).
 *
 * Importing this module starts nothing: no server, no Worker, no native library until asked for.
 */
import packageJson from '../package.json' with { type: 'json' }

/** The version of this package. */
export const VERSION: string = packageJson.version

// the wire and disk contract: schemas, types, enums, decode
export * from './contract/index.ts'
// configuration: env + flags → NodeConfig
export * from './config/index.ts'

// detector node
export { DetectorNode, DEFAULT_DETECTOR_PORT, type DetectorNodeOptions } from './detector/detector-node.ts'
export {
  OnnxDetectorFactory, DEFAULT_MODEL_FORMAT,
  type DetectorLogic, type DetectorLogicFactory, type LogicOutput, type OnnxDetectorOptions,
} from './detector/detector-logic.ts'
export { RelevanceFilter, ObservationHistory, type RelevanceFilterOptions } from './detector/relevance-filter.ts'
export { Outbox, createFetchUpload, type OutboxOptions, type UploadFunction, type SaveResult } from './detector/outbox.ts'
export { DEFAULT_OUTBOX_LIMITS, type OutboxLimits, type OutboxQueueName } from './detector/outbox-policy.ts'

// annotator, converter and trainer nodes and their logic interfaces
export * from './annotator/index.ts'
export * from './trainer/index.ts'
export { TrainerNode, DEFAULT_TRAINER_PORT, type TrainerNodeOptions, type TrainerTiming } from './trainer/trainer-node.ts'
export {
  ConverterNode, selectModelsToConvert, DEFAULT_CONVERSION_INTERVAL_MS, DEFAULT_MAX_CONVERSIONS_PER_CYCLE,
  ModelNotConvertibleError, ConversionLedger, decideConversion, recordFailure, recordSuccess, ledgerKey,
  YoloOnnxConverter, categoriesForClassNames, YOLO_ONNX_FORMAT, ONNX_PACKAGE_FORMAT,
  // the trainer's state machine has its own DEFAULT_RETRY_POLICY / RetryPolicy
  DEFAULT_RETRY_POLICY as DEFAULT_CONVERSION_RETRY_POLICY,
  type RetryPolicy as ConversionRetryPolicy,
  type ConverterNodeOptions, type ConverterCycleReport, type ConverterLogic, type ConversionDecision,
} from './converter/index.ts'

// the embedded Learning Loop
export * from './local-loop/index.ts'

// inference: engine, backends, images, model packages
export * from './inference/index.ts'

// the Loop client (REST, socket.io, data exchange)
export * from './loop/index.ts'

// the node runtime shared by all node kinds
export { NodeRuntime, SHUTDOWN_GRACE_MS, type NodeRuntimeOptions, type NodeHooks, type NodeType } from './node/node-runtime.ts'
export { LoopConnection, LOCAL_CONTEXT, type LoopConnectionOptions, type EmbeddedLoop, type EmbeddedLoopOptions } from './node/loop-connection.ts'
export { resolveDataFolder, type DataFolderChoice } from './node/data-folder.ts'
export { loadOrCreateNodeUuid } from './node/node-identity.ts'
export { createLogger, errorMessage, parseLevel, setLogLevel, getLogLevel, setLogSink, type Logger, type LogLevel } from './foundation/log.ts'
export { MetricsRegistry, Counter, Gauge, Histogram } from './foundation/metrics.ts'
export { backoffDelayMs, type BackoffPolicy } from './foundation/backoff.ts'
export { serve, createSocketIo, type RunningServer, type SocketIoBinding } from './node/http-server.ts'
