import { Type, type Static, type TSchema } from '@sinclair/typebox'
import { ClassificationAnnotation, BoxAnnotation, PointAnnotation } from './image-metadata.ts'
import { SegmentationAnnotation } from './annotation.ts'
import { BoxDetection, ClassificationDetection, Detections, PointDetection, SegmentationDetection } from './detections.ts'
import { Category } from './general.ts'
import { LoopImageStateSchema, type LoopImageState } from './local-loop-api.ts'
import { DeploymentTarget, LoopModel } from './loop-api.ts'
import { TrainingOut } from './training.ts'
import { OrNull, StringEnum } from './schema-helpers.ts'

/**
 * What the embedded local Loop answers on its REST (/api) and admin (/admin) routes beyond §4's node-facing
 * shapes. The routes build their answers as these types and document themselves with the schemas.
 */

const ImageSet = StringEnum(['train', 'test'])
/** One value per image state of the local Loop (LOOP_IMAGE_STATES). */
const perState = <T extends TSchema>(schema: T) => Type.Object({ inbox: schema, annotate: schema, review: schema, complete: schema, trash: schema })
/** Images per state; a state without images is left out. */
const StateCounts = Type.Partial(perState(Type.Integer()))

/** `GET /api/status`. */
export const LoopStatusAnswer = Type.Object({ status: Type.Literal('ok'), loop: Type.Literal('local'), version: Type.String() }, { $id: 'LoopStatusAnswer' })
/** `POST /api/login`; the session is the `set-cookie` header. */
export const LoginAnswer = Type.Object({ username: Type.String() }, { $id: 'LoginAnswer' })
/** A plain acknowledgement with a message (logout, project deletion). */
export const DetailAnswer = Type.Object({ detail: Type.String() }, { $id: 'DetailAnswer' })
export const ProjectDeletedAnswer = Type.Object({ detail: Type.String(), keep_images: Type.Boolean() }, { $id: 'ProjectDeletedAnswer' })

/** `POST /api/<org>/projects/generator` and `POST /admin/projects`. */
export const GeneratedProject = Type.Object({
  organization: Type.String(),
  project: Type.String(),
  categories: Type.Array(Category),
  image_ids: perState(Type.Array(Type.String())),
  trainings: Type.Array(Type.Integer()),
  models: Type.Array(Type.Object({ id: Type.String(), version: Type.String(), formats: Type.Array(Type.String()) })),
}, { $id: 'GeneratedProject' })
export type GeneratedProject = Static<typeof GeneratedProject>

/** `GET /api/<org>/projects/<project>` (§9). */
export const LoopProjectInfo = Type.Object({
  id: Type.String(), name: Type.String(), organization: Type.String(), resource: Type.String(),
  categories: Type.Array(Category),
  counts: StateCounts,
  deployment_target: OrNull(DeploymentTarget),
}, { $id: 'LoopProjectInfo' })
export type LoopProjectInfo = Static<typeof LoopProjectInfo>

/** `GET /api/<org>/projects/<project>/data` (§4 #4): the image ids, with the project's categories and counts. */
export const LoopProjectData = Type.Object({
  image_ids: Type.Array(Type.String()),
  categories: Type.Array(Category),
  organization: Type.String(),
  project: Type.String(),
  counts: StateCounts,
}, { $id: 'LoopProjectData' })
export type LoopProjectData = Static<typeof LoopProjectData>

/** One image of `GET …/images?ids=` (§4 #5), everything the local Loop keeps of it. */
export const LoopImageData = Type.Object({
  id: Type.String(), set: ImageSet, width: Type.Integer(), height: Type.Integer(), state: LoopImageStateSchema, tags: Type.Array(Type.String()),
  created: Type.String(), source: OrNull(Type.String()), file_name: OrNull(Type.String()), resource: Type.String(), thumbnail: Type.String(),
  box_annotations: Type.Array(BoxAnnotation), point_annotations: Type.Array(PointAnnotation),
  segmentation_annotations: Type.Array(SegmentationAnnotation), classification_annotation: OrNull(ClassificationAnnotation),
  box_detections: Type.Array(BoxDetection), point_detections: Type.Array(PointDetection),
  segmentation_detections: Type.Array(SegmentationDetection), classification_detections: Type.Array(ClassificationDetection),
  trainer_detections: OrNull(Detections),
}, { $id: 'LoopImageData' })
export type LoopImageData = Static<typeof LoopImageData>
export const LoopImageDataAnswer = Type.Object({ images: Type.Array(LoopImageData) }, { $id: 'LoopImageDataAnswer' })

/** `POST …/images` (§4 #13). */
export const UploadOutcome = Type.Object({
  /** ids of the images stored by this request */
  stored: Type.Array(Type.String()),
  /** ids of images that were already there (a retry), left unchanged */
  duplicates: Type.Array(Type.String()),
  /** per item in upload order: the uploaded file name and the image id it has in the Loop */
  items: Type.Array(Type.Object({ file_name: Type.String(), id: Type.String(), created: Type.Boolean() })),
}, { $id: 'UploadOutcome' })
export type UploadOutcome = Static<typeof UploadOutcome>

/** One model of `GET …/models` (§4 #11) as the local Loop lists it: with its training. */
export const LocalLoopModel = Type.Object({ ...LoopModel.properties, training_number: Type.Integer() }, { $id: 'LocalLoopModel' })
export const LocalLoopModelsAnswer = Type.Object({ models: Type.Array(LocalLoopModel) }, { $id: 'LocalLoopModelsAnswer' })
export type LocalLoopModelsAnswer = Static<typeof LocalLoopModelsAnswer>

/** A model format stored (§4 #8, §9). */
export const StoredModelAnswer = Type.Object({ id: Type.String(), version: Type.String(), formats: Type.Array(Type.String()) }, { $id: 'StoredModelAnswer' })
export const AdminStoredModelAnswer = Type.Object({ ...StoredModelAnswer.properties, training_number: Type.Integer() }, { $id: 'AdminStoredModelAnswer' })

/** One training as the local Loop shows it (T3, the admin API). */
export const TrainingView = Type.Object({
  number: Type.Integer(), id: Type.String(),
  /** `created`, `running` after begin_training was sent, then the trainer's state */
  state: Type.String(),
  outcome: OrNull(StringEnum(['completed', 'stopped', 'aborted', 'failed'])),
  error: OrNull(Type.String()),
  created_at: Type.String(),
  trainer_id: OrNull(Type.String()),
  model_variant: Type.String(),
  hyperparameters: Type.Record(Type.String(), Type.Unknown()),
  base_model_uuid: OrNull(Type.String()),
  last_update: OrNull(TrainingOut),
  models: Type.Array(Type.Object({ id: Type.String(), version: Type.String(), formats: Type.Array(Type.String()) })),
}, { $id: 'TrainingView' })
export type TrainingView = Static<typeof TrainingView>

/** `GET …/trainings` (T3): newest first, and `charts[0].data[0].model_id` = the latest model. */
export const TrainingsListing = Type.Object({
  trainings: Type.Array(TrainingView),
  charts: Type.Array(Type.Object({
    name: Type.String(),
    data: Type.Array(Type.Object({
      model_id: Type.String(), version: Type.String(), training_number: Type.Integer(), created: Type.String(), formats: Type.Array(Type.String()),
    })),
  })),
}, { $id: 'TrainingsListing' })
export type TrainingsListing = Static<typeof TrainingsListing>

/** `POST …/detections` (§4 #9). */
export const DetectionsStoredAnswer = Type.Object({ stored: Type.Integer(), unknown_image_ids: Type.Array(Type.String()) }, { $id: 'DetectionsStoredAnswer' })
export type DetectionsStoredAnswer = Static<typeof DetectionsStoredAnswer>
export const SuccessAnswer = Type.Object({ success: Type.Literal(true) }, { $id: 'SuccessAnswer' })
/** The latest status each detector posted (§4 #12). */
export const DetectorStatusesAnswer = Type.Object({
  detectors: Type.Array(Type.Object({ uuid: Type.String(), status: Type.Unknown(), receivedAt: Type.Number({ description: 'epoch milliseconds' }) })),
}, { $id: 'DetectorStatusesAnswer' })

// ---------------------------------------------------------------- the admin API

const RateLimitSchema = Type.Object({ perSecond: Type.Number(), burst: Type.Optional(Type.Number()) })

export const LoopStats = Type.Object({
  uptime_seconds: Type.Number(),
  requests: Type.Object({
    total: Type.Integer(), rate_limited: Type.Integer(),
    by_route: Type.Record(Type.String(), Type.Integer()), by_status: Type.Record(Type.String(), Type.Integer()),
  }),
  sockets: Type.Object({
    handshakes: Type.Integer(), accepted: Type.Integer(), rejected: Type.Integer(), disconnects: Type.Integer(),
    eventsReceived: Type.Record(Type.String(), Type.Integer()), connected: Type.Integer(),
  }),
  sessions: Type.Integer(),
  rate_limit: OrNull(RateLimitSchema),
}, { $id: 'LoopStats' })

export const RateLimitAnswer = Type.Object({ rate_limit: OrNull(RateLimitSchema) }, { $id: 'RateLimitAnswer' })

export const ConnectedNode = Type.Object({
  /** socket.io id of this connection */
  sid: Type.String(),
  nodeType: Type.String(),
  organization: OrNull(Type.String()),
  project: OrNull(Type.String()),
  connectedAt: Type.Number(),
  /** the peer's address, when the engine knows it */
  address: OrNull(Type.String()),
  /** `id` of the latest status the node sent (its uuid), null before the first */
  nodeId: OrNull(Type.String()),
  name: OrNull(Type.String()),
  lastStatus: Type.Unknown(),
  lastStatusAt: OrNull(Type.Number()),
}, { $id: 'ConnectedNode' })
export const ConnectedNodesAnswer = Type.Object({ nodes: Type.Array(ConnectedNode) }, { $id: 'ConnectedNodesAnswer' })

export const NodeStatusesAnswer = Type.Object({
  statuses: Type.Array(Type.Object({
    event: StringEnum(['update_trainer', 'update_annotation_node']), sid: Type.String(), nodeId: Type.String(), status: Type.Unknown(), receivedAt: Type.Number(),
  })),
}, { $id: 'NodeStatusesAnswer' })

/** What a node acknowledged an event with (null without an ack). */
export const AckAnswer = Type.Object({ ack: Type.Unknown() }, { $id: 'AckAnswer' })
export const SentAnswer = Type.Object({ sent: Type.Literal(true) }, { $id: 'SentAnswer' })

export const ProjectSummary = Type.Object({
  organization: Type.String(), project: Type.String(), counts: StateCounts, categories: Type.Integer(), models: Type.Integer(),
}, { $id: 'ProjectSummary' })
export const ProjectSummariesAnswer = Type.Object({ projects: Type.Array(ProjectSummary) }, { $id: 'ProjectSummariesAnswer' })
export const AdminProjectDeletedAnswer = Type.Object({ deleted: Type.Literal(true), keep_images: Type.Boolean() }, { $id: 'AdminProjectDeletedAnswer' })

export const ImageSummary = Type.Object({
  id: Type.String(), file_name: OrNull(Type.String()), state: LoopImageStateSchema, set: ImageSet, tags: Type.Array(Type.String()),
  width: Type.Integer(), height: Type.Integer(), created: Type.String(), source: OrNull(Type.String()),
  box_annotations: Type.Integer(), point_annotations: Type.Integer(), segmentation_annotations: Type.Integer(),
  box_detections: Type.Integer(), point_detections: Type.Integer(), segmentation_detections: Type.Integer(), classification_detections: Type.Integer(),
  has_trainer_detections: Type.Boolean(),
}, { $id: 'ImageSummary' })
export const ImageSummariesAnswer = Type.Object({ images: Type.Array(ImageSummary) }, { $id: 'ImageSummariesAnswer' })

export const ClearedAnswer = Type.Object({ cleared: Type.Literal(true) }, { $id: 'ClearedAnswer' })
export const TrainingStartedAnswer = Type.Object({ training: TrainingView, ack: Type.Unknown() }, { $id: 'TrainingStartedAnswer' })

// a state added to LOOP_IMAGE_STATES must be added to `perState`: this line does not compile until it is
void (perState(Type.Null()).properties satisfies Record<LoopImageState, unknown>)
