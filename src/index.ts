/**
 * learning-loop-node as a library for other Bun apps: `import { DetectorNode, … } from 'learning-loop-node'`.
 *
 * - Nodes: DetectorNode (bring a DetectorLogicFactory), AnnotatorNode (an AnnotatorLogic), ConverterNode
 *   (a ConverterLogic), the trainer framework (a TrainerLogic), and LocalLoop, an embedded Learning Loop.
 * - Inference: createInferenceEngine (ONNX model packages in a pool of Workers sized to the machine; webgpu → cuda → cpu → wasm).
 * - Contract: every wire/disk shape as a TypeBox schema and a type of the same name, plus `decode`.
 * - Config, the Loop client, and the node runtime pieces (logger, metrics, HTTP + socket.io server).
 *
 * Importing this module starts nothing: no server, no Worker, no native library until asked for.
 * Apart from contract/, no folder has an index: the names below come from the files that define them
 * (ARCHITECTURE.md).
 */
import packageJson from '../package.json' with { type: 'json' }

/** The version of this package. */
export const VERSION: string = packageJson.version

// the wire and disk contract: schemas, types, enums, decode
export * from './contract/index.ts'

// configuration: env + flags → NodeConfig
export * from './config/settings.ts'
export * from './config/read-settings.ts'
export * from './config/loop-url.ts'
export * from './config/node-config.ts'
export * from './config/inference-settings.ts'

// detector node
export { DetectorNode, DEFAULT_DETECTOR_PORT, type DetectorNodeOptions } from './detector/detector-node.ts'
export {
  OnnxDetectorFactory, DEFAULT_MODEL_FORMAT,
  type DetectorLogic, type DetectorLogicFactory, type LogicOutput, type OnnxDetectorOptions,
} from './detector/detector-logic.ts'
export { RelevanceFilter, ObservationHistory, type RelevanceFilterOptions } from './detector/relevance-filter.ts'
export { Outbox, type OutboxOptions, type SaveResult } from './detector/outbox.ts'
export { createFetchUpload, type ImageUploadTarget, type UploadFunction } from './loop/image-upload.ts'
export { DEFAULT_OUTBOX_LIMITS, type OutboxLimits, type OutboxQueueName } from './detector/outbox-policy.ts'
export { CameraManager, ALL_CAMERAS, UnknownCameraError, type CameraManagerOptions, type DetectionsListener } from './detector/cameras/camera-manager.ts'
export { CameraConfigError, parseCameraConfig, parseCamerasFile } from './detector/cameras/camera-config.ts'

// annotator node, its session store, the tool interface and the built-in box-segmentation tool
export { AnnotatorNode, AnnotatorRequestError, ANNOTATOR_CAPABILITIES, ANNOTATOR_NODE_TYPE, type AnnotatorNodeOptions } from './annotator/annotator-node.ts'
export { AnnotationToolError, type AnnotatorLogic, type AnnotationContext } from './annotator/annotator-logic.ts'
export { AnnotationSessions, DEFAULT_SESSION_OPTIONS, type AnnotationSessionsOptions } from './annotator/annotation-sessions.ts'
export { BoxSegmentationTool, type BoxSegmentationToolOptions } from './annotator/box-segmentation-tool.ts'
export { segmentBox, SegmentationInputError, type SegmentationRequest, type SegmentationResult } from './annotator/box-segmentation.ts'
export type { PixelBox, Stroke } from './annotator/segmentation-grid.ts'
export { AnnotationInputError, createSegmentationHistory, type SegmentationHistory } from './annotator/segmentation-interaction.ts'
export { createInProcessSegmenter, createWorkerSegmenter, SegmenterUnavailableError, type Segmenter, type ImageSize } from './annotator/segmenter.ts'

// trainer node and the trainer framework
export * from './trainer/training-state-machine.ts'
export * from './trainer/training-errors.ts'
export * from './trainer/training-runner.ts'
export * from './trainer/training-supervisor.ts'
export * from './trainer/training-creation.ts'
export * from './trainer/last-training-file.ts'
export * from './trainer/active-training-files.ts'
export * from './trainer/executor.ts'
export * from './trainer/process-group.ts'
export * from './trainer/rotating-log-file.ts'
export * from './trainer/trainer-logic.ts'
export * from './trainer/training-process-step.ts'
export * from './trainer/command-trainer.ts'
export * from './trainer/command-template.ts'
export * from './trainer/trainer-output-protocol.ts'
export * from './trainer/training-data-downloader.ts'
export * from './trainer/jpeg-check.ts'
export * from './trainer/loop-trainer-steps.ts'
export * from './trainer/loop-trainer-port.ts'
export * from './trainer/trainer-status-reporter.ts'
export * from './trainer/testing-trainer.ts'
export { TrainerNode, DEFAULT_TRAINER_PORT, type TrainerNodeOptions, type TrainerTiming } from './trainer/trainer-node.ts'

// converter node, the ConverterLogic interface, the ledger and the built-in YOLO ONNX → ONNX package conversion
export { ConverterNode, selectModelsToConvert, DEFAULT_CONVERSION_INTERVAL_MS, DEFAULT_MAX_CONVERSIONS_PER_CYCLE, type ConverterNodeOptions, type ConverterCycleReport } from './converter/converter-node.ts'
export { ModelNotConvertibleError, type ConverterLogic } from './converter/converter-logic.ts'
export {
  ConversionLedger, decideConversion, recordFailure, recordSuccess, ledgerKey, type ConversionDecision,
  // the trainer's state machine has its own DEFAULT_RETRY_POLICY / RetryPolicy
  DEFAULT_RETRY_POLICY as DEFAULT_CONVERSION_RETRY_POLICY, type RetryPolicy as ConversionRetryPolicy,
} from './converter/conversion-ledger.ts'
export { YoloOnnxConverter, categoriesForClassNames, YOLO_ONNX_FORMAT, ONNX_PACKAGE_FORMAT } from './converter/yolo-onnx-converter.ts'

// the embedded Learning Loop
export { LocalLoop } from './local-loop/local-loop.ts'
export type { LocalLoopOptions } from './local-loop/local-loop.ts'
export type { LocalLoopAdmin, LoopStats, RequestCounts, ProjectSummary, ImageSummary, NodeStatusSummary, ModelUploadRequest, StartTrainingRequest } from './local-loop/local-loop-admin.ts'
export type { ConnectedNode, NodeSelector, ReceivedStatus, ReceivedTrainingUpdate, SocketCounters } from './local-loop/node-hub.ts'
export { NodeAckTimeoutError } from './local-loop/node-hub.ts'
export { LoopRequestError } from './local-loop/loop-errors.ts'
export type { RateLimit } from './local-loop/rate-limiter.ts'
export { SESSION_COOKIE } from './local-loop/session-store.ts'
export { MOCKED_MODEL_FILES, MAX_DETECTIONS_PER_REQUEST } from './local-loop/loop-operations.ts'
export type { GeneratedProject, UploadOutcome } from './local-loop/loop-operations.ts'
export type { StoredModel, StoredTraining } from './local-loop/loop-store.ts'
export type { StoredImage } from './local-loop/image-records.ts'

// inference: engine, backends, images, model packages
export { AUTO_BACKEND_CHAIN, AUTO_BACKEND_CHAIN_ON_DENO, GPU_BACKENDS, parseBackendChoice, backendCandidates } from './inference/backend-choice.ts'
export { createInferenceEngine, type InferenceEngine, type InferenceEngineOptions } from './inference/inference-engine.ts'
export type { DetectionOutput, DetectionRequestOptions, StageTimings } from './inference/worker-protocol.ts'
export type { PoolStatus } from './inference/worker-pool.ts'
export { readUsableCores, readCpuLimits } from './inference/cpu-limits.ts'
export { choosePoolPlan, type PoolPlan, type ThreadMeasurement, type CpuLimits } from './inference/thread-policy.ts'
export { ImageInputError, NoBackendError, ModelPackageError, InferenceUnavailableError, type BackendRejection } from './inference/inference-errors.ts'
export { decodeImage, type ImageInput, type RgbImage, type ImageDecoderChoice, type DecodeOptions } from './inference/image-decoding.ts'
export { ImageDecodePool, decodeImageInWorker, type ImageDecodePoolOptions, type WorkerDecodeOptions } from './inference/image-decode-pool.ts'
export { readImageHeader, type ImageHeader } from './inference/image-header.ts'
export { encodeJpeg } from './inference/jpeg-encoding.ts'
export { builtinModelDir, BUILTIN_MODEL_VERSION } from './inference/builtin-model.ts'
export { installModelPackage, readModelPackage, findModelRoot, type ModelPackage, type ModelInformationWithFormat, type InstallLimits } from './inference/model-package.ts'
export { readOnnxModelHeader, type OnnxModelHeader } from './inference/onnx-model-header.ts'

// the Loop client (REST, socket.io, data exchange)
export * from './loop/loop-error.ts'
export * from './loop/cookie-jar.ts'
export * from './loop/retry-policy.ts'
export * from './loop/loop-rest-client.ts'
export type { MultipartFile, LoopBody } from './loop/loop-request-body.ts'
export * from './loop/loop-socket.ts'
export * from './loop/data-exchange.ts'

// the node runtime shared by all node kinds
export { NodeRuntime, SHUTDOWN_GRACE_MS, type NodeRuntimeOptions, type NodeHooks, type NodeType } from './node/node-runtime.ts'
export { LoopConnection, LOCAL_CONTEXT, type LoopConnectionOptions, type EmbeddedLoop, type EmbeddedLoopOptions } from './node/loop-connection.ts'
export { resolveDataFolder, type DataFolderChoice } from './node/data-folder.ts'
export { loadOrCreateNodeUuid } from './node/node-identity.ts'
export { serve, createSocketIo, type RunningServer, type SocketIoBinding } from './node/http-server.ts'
export {
  routeDocs, jsonContent, textContent, htmlContent, multipartContent, bytesContent, binaryString, ErrorAnswer, type Content, type RouteDocsInput,
} from './node/route-docs.ts'
export { registerApiDocs } from './node/api-docs.ts'
export { openApiDocument, type OpenApiDocument, type DocumentInfo } from './node/openapi-document.ts'

// foundation: logging, metrics, backoff, zip archives
export { createLogger, errorMessage, parseLevel, setLogLevel, getLogLevel, setLogSink, type Logger, type LogLevel } from './foundation/log.ts'
export { MetricsRegistry, Counter, Gauge, Histogram } from './foundation/metrics.ts'
export { backoffDelayMs, type BackoffPolicy } from './foundation/backoff.ts'
export { extractZip, createZip, listZipEntries, ZipError } from './foundation/zip-archive.ts'
