import type { LoopImageState, ProjectGeneratorRequest } from '../contract/index.ts'
import type { GeneratedProject, LoopOperations } from './loop-operations.ts'
import type { StoredModel, StoredTraining } from './loop-store.ts'
import type { ConnectedNode, NodeSelector, ReceivedStatus, SocketCounters } from './node-hub.ts'
import type { RateLimit } from './rate-limiter.ts'

/**
 * What the admin API (admin-routes.ts) does with a running local loop. `LocalLoop` implements it; the routes
 * receive it instead of importing the loop they are part of.
 */
export interface LocalLoopAdmin {
  /** the listings of trainings, as the admin API shows them */
  readonly operations: Pick<LoopOperations, 'trainingsListing' | 'trainingView'>
  stats(): LoopStats
  setRateLimit(limit: number | RateLimit | null): void
  rateLimit(): RateLimit | null
  connectedNodes(): ConnectedNode[]
  statusHistory(nodeId?: string): ReceivedStatus[]
  emit(target: NodeSelector, event: string, args: unknown[], options?: { timeoutMs?: number; expectAck?: boolean }): Promise<unknown>
  stopTraining(target: NodeSelector, timeoutMs?: number): Promise<unknown>
  abortTraining(target: NodeSelector, timeoutMs?: number): Promise<unknown>
  listProjects(): ProjectSummary[]
  createProject(organization: string, request: ProjectGeneratorRequest, options?: { seed?: number | null }): Promise<GeneratedProject>
  deleteProject(organization: string, project: string, options?: { keepImages?: boolean }): Promise<boolean>
  listImages(organization: string, project: string, state?: LoopImageState): ImageSummary[]
  models(organization: string, project: string): { models: Record<string, unknown>[] }
  uploadModel(organization: string, project: string, upload: ModelUploadRequest): Promise<StoredModel>
  setDeploymentTarget(organization: string, project: string, which: string | { modelId?: string | null; version?: string | null }): StoredModel
  clearDeploymentTarget(organization: string, project: string): void
  startTraining(organization: string, project: string, request: StartTrainingRequest): Promise<{ training: StoredTraining; ack: unknown }>
  detectorStatuses(organization: string, project: string): { uuid: string; status: unknown; receivedAt: number }[]
}

export interface RequestCounts {
  total: number
  rate_limited: number
  by_route: Record<string, number>
  by_status: Record<string, number>
}

export interface LoopStats {
  uptime_seconds: number
  requests: RequestCounts
  sockets: SocketCounters & { connected: number }
  sessions: number
  rate_limit: RateLimit | null
}

export interface ProjectSummary {
  organization: string
  project: string
  counts: Record<string, number>
  categories: number
  models: number
}

export interface ImageSummary {
  id: string
  /** the uploaded JPEG's file name (null for generated images) */
  file_name: string | null
  state: LoopImageState
  set: 'train' | 'test'
  tags: string[]
  width: number
  height: number
  created: string
  source: string | null
  box_annotations: number
  point_annotations: number
  segmentation_annotations: number
  box_detections: number
  point_detections: number
  segmentation_detections: number
  classification_detections: number
  has_trainer_detections: boolean
}

export interface NodeStatusSummary {
  nodeId: string
  event: ReceivedStatus['event']
  status: unknown
  receivedAt: number
  connected: boolean
  sid: string
}

export interface ModelUploadRequest {
  format: string
  /** a zip whose entries are the format's files (and optionally model.json) */
  zip?: Uint8Array
  /** or the files themselves */
  files?: Record<string, Uint8Array | string>
  /** default: the project's newest training (training 1 is created when there is none) */
  trainingNumber?: number
  /** add the format to this model instead (or replace it) */
  modelId?: string
  comment?: string | null
}

export interface StartTrainingRequest {
  node: NodeSelector
  modelVariant?: string
  hyperparameters?: Record<string, unknown>
  baseModelUuid?: string | null
  timeoutMs?: number
}
