import type { AboutResponse, CameraStatus, ImageMetadata, ModelVersionResponse, OperationMode, OutboxMode } from '../contract/index.ts'
import type { ImageInput } from '../inference/image-decoding.ts'
import type { NodeRuntime } from '../node/node-runtime.ts'
import type { DetectOptions, LastDetection, UploadItem } from './detection-service.ts'

/** What the status page polls (`GET /status.json`): model, modes, outbox and the last detection's metadata. */
export interface DetectorStatusData {
  now: number
  model: { version: string; backend: string; categories: number } | null
  operation_mode: OperationMode
  version_control: string
  target_version: string | null
  outbox: { mode: OutboxMode; priority: number; normal: number; bytes: number; uploaded: number; rejected: number; dropped: number }
  last: { metadata: ImageMetadata; at: number } | null
  cameras: CameraStatus[]
}

/**
 * The detector as its REST routes, socket.io events and status page see it (§7.3, §5.5): exactly the operations
 * they offer. DetectorNode implements it; a route module imports this, never the node.
 */
export interface DetectorApi {
  /** `route` (rest, socket) labels the metrics */
  detect(image: ImageInput, options: DetectOptions, route: string): Promise<ImageMetadata>
  detectBatch(images: ImageInput[], options: DetectOptions, route: string): Promise<ImageMetadata[]>
  /** queues images for the Loop, all or none; resolves when all are saved */
  upload(images: ImageInput | UploadItem[], metadata: ImageMetadata, priority: boolean): Promise<void>
  about(): AboutResponse
  /** the version being built while no model serves, if one is */
  updatingTo(): string | undefined
  modelVersions(): Promise<ModelVersionResponse>
  /** `follow_loop`, `pause` or a version; throws VersionModeError and changes nothing when it cannot be honoured */
  setVersionMode(raw: unknown): Promise<void>
  outboxMode(): OutboxMode
  /** throws for anything but an outbox mode */
  setOutboxMode(mode: string): Promise<void>
  readonly operationMode: OperationMode
  /** throws RangeError for anything but an operation mode */
  setOperationMode(raw: string): Promise<void>
  statusData(): DetectorStatusData
  /** the last detection with its image as JPEG */
  lastDetection(): Promise<LastDetection | undefined>
  /** the test backdoor: wipes the data folder; false when that failed */
  reset(): Promise<boolean>
}

/** What a route module needs of the node's runtime: its log and metrics, and `track` to keep work visible to shutdown. */
export type RouteHost = Pick<NodeRuntime, 'log' | 'metrics' | 'track'>
