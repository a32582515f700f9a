import { describe, expect, test } from 'bun:test'
import {
  AboutResponse, AnnotationData, AnnotationNodeStatus, BeginTrainingDetails, BoxAnnotation, BoxDetection, Category,
  ClassificationAnnotation, ClassificationDetection, ContractError, Context, DeploymentTarget, Detections,
  DetectorStatus, ErrorConfiguration, ImageData, ImageIdsResponse, ImageMetadata, ImagesMetadata, LoopModelsResponse,
  ModelInformation, ModelUploadResponse, ModelVersionResponse, NodeStatus, Point, PointAnnotation, PointDetection,
  PretrainedModel, SegmentationAnnotation, SegmentationDetection, Shape, SocketResponse, ToolOutput, Training,
  TrainingOut, TrainingStateData, TrainingStatus, UserInput, DetectRequest, BatchDetectRequest, UploadRequest,
  ProjectsResponse, ProjectGeneratorRequest, decode, decodeJson, tryDecode, toSocketResponse, countDetections,
  formatCreated, formatOutboxIdentifier, isOneOf, TRAINER_STATES,
} from '../../src/contract/index.ts'
import { imageFileName, fileStemOf } from '../../src/contract/index.ts'
import type { TSchema } from '@sinclair/typebox'

const category = { id: 'c6b2a3a0-1d2e-4a55-9a5e-000000000001', name: 'purple point', description: null, hotkey: '1', color: '#a0f', point_size: 20, type: 'point' }
const box = { category_name: 'dirt', x: 10, y: 20, width: 30, height: 40, model_name: '1.3', confidence: 0.42, category_id: 'cat-1' }
const point = { category_name: 'weed', x: 12.5, y: 7.25, model_name: '1.3', confidence: 0.9, category_id: null }
const segmentation = { category_name: 'leaf', shape: '1,1,5,1,5,5', model_name: '1.3', confidence: 0.5, category_id: 'cat-3' }
const classification = { category_name: 'healthy', model_name: '1.3', confidence: 0.31, category_id: 'cat-4' }
const modelInfo = { id: 'm-1', host: 'learning-loop.ai', organization: 'zauberzeug', project: 'demo', version: '1.3', categories: [category], resolution: 832, model_root_path: '/data/models/1.3', model_size: 's6' }
const imageMetadata = {
  box_detections: [box], point_detections: [point], segmentation_detections: [segmentation], classification_detections: [classification],
  box_annotations: [{ category_name: 'dirt', x: 1, y: 2, width: 3, height: 4, category_id: null }],
  point_annotations: [{ category_name: 'weed', x: 1.5, y: 2.5, category_id: 'cat-2' }],
  classification_annotation: { category_name: 'healthy', category_id: 'cat-4' },
  tags: ['uncertain', 'camera_a'], created: '2025-03-05_14:22:01.123', source: 'robot-7',
}
const context = { organization: 'zauberzeug', project: 'demo' }
const annotationData = {
  coordinate: { x: 100, y: 150 }, event_type: 'left_mouse_down', context, image_uuid: '10f7d7d2-4076-7006-af37-fa28a6a848ae',
  category: category, key_up: null, key_down: null, epsilon: null, is_shift_key_pressed: true,
}
const training = {
  id: 'f1c5…-uuid', context, project_folder: '/data/zauberzeug/demo', images_folder: '/data/zauberzeug/demo/images',
  training_folder: '/data/zauberzeug/demo/trainings/t-1', categories: [category], hyperparameters: { resolution: 832, fliplr: 0.5, flipud: 0.5 },
  training_number: 3, training_state: 'running', model_variant: 's6', start_time: 1741180921.5, base_model_uuid: null,
  image_data: [{ id: 'i-1', set: 'train', width: 640, height: 480, box_annotations: [{ category_id: 'c', x: 1, y: 2, width: 3, height: 4 }], point_annotations: [] }],
  skipped_image_count: 0, model_uuid_for_detecting: null,
}

// Realistic JSON for every shape, as it appears on the wire or on disk; each must decode to itself.
const examples: [string, TSchema, unknown][] = [
  ['Category', Category, category],
  ['Context', Context, context],
  ['ErrorConfiguration', ErrorConfiguration, { begin_training: false, save_model: true, get_new_model: false, crash_training: false }],
  ['NodeStatus', NodeStatus, { id: 'n-1', name: 'trainer', state: 'online', uptime: 12, errors: { prepare: 'boom' }, capabilities: ['segmentation'] }],
  ['AnnotationNodeStatus', AnnotationNodeStatus, { id: 'a-1', name: 'annotator', state: 'online', uptime: 0, errors: {}, capabilities: ['segmentation'] }],
  ['PretrainedModel', PretrainedModel, { name: 's6', label: 'YOLO v5 1280 small', description: 'a small model' }],
  ['Point', Point, { x: 1, y: 2 }],
  ['Shape', Shape, { points: [{ x: 1, y: 1 }, { x: 5, y: 1 }] }],
  ['BoxDetection', BoxDetection, box],
  ['PointDetection', PointDetection, point],
  ['SegmentationDetection (string shape)', SegmentationDetection, segmentation],
  ['SegmentationDetection (Shape)', SegmentationDetection, { ...segmentation, shape: { points: [{ x: 1, y: 1 }] } }],
  ['ClassificationDetection', ClassificationDetection, classification],
  ['Detections', Detections, { box_detections: [box], point_detections: [point], segmentation_detections: [], classification_detections: [], image_id: 'i-1' }],
  ['ModelInformation', ModelInformation, modelInfo],
  ['BoxAnnotation', BoxAnnotation, imageMetadata.box_annotations[0]],
  ['PointAnnotation', PointAnnotation, imageMetadata.point_annotations[0]],
  ['ClassificationAnnotation', ClassificationAnnotation, imageMetadata.classification_annotation],
  ['ImageMetadata', ImageMetadata, imageMetadata],
  ['ImagesMetadata', ImagesMetadata, { items: [imageMetadata, imageMetadata] }],
  ['AnnotationData', AnnotationData, annotationData],
  ['UserInput', UserInput, { frontend_id: 'f-1', data: annotationData }],
  ['SegmentationAnnotation', SegmentationAnnotation, { id: 's-1', shape: { points: [{ x: 1, y: 2 }] }, image_id: 'i-1', category_id: 'c-1' }],
  ['ToolOutput', ToolOutput, { svg: '<svg></svg>', annotation: null }],
  ['ImageData', ImageData, training.image_data[0]],
  ['Training', Training, training],
  ['BeginTrainingDetails', BeginTrainingDetails, { categories: [category], hyperparameters: { epochs: 10 }, training_number: 1, model_variant: 'n', base_model_uuid: null }],
  ['TrainingStateData', TrainingStateData, { confusion_matrix: { 'cat-1': { tp: 1, fp: 2, fn: 3 } }, meta_information: { weightfile: '/tmp/w.pt' }, epoch: 7 }],
  ['TrainingOut', TrainingOut, { trainer_id: 'n-1', trainer_name: 'trainer', confusion_matrix: { 'cat-1': { tp: 1, fp: 0, fn: 0 } }, train_image_count: 8, test_image_count: 2, hyperparameters: { epochs: 10 }, best_epoch: 3 }],
  ['TrainingStatus', TrainingStatus, { id: 'n-1', name: 'trainer', state: 'running', uptime: 42.5, errors: {}, progress: 0.3, pretrained_models: [{ name: 'n', label: 'n', description: 'd' }], architecture: 'yolov5', context }],
  ['DetectorStatus', DetectorStatus, { uuid: 'd-1', name: 'detector', state: 'online', uptime: 30, model_format: 'onnx', current_model: '1.3', target_model: '1.4', errors: {}, operation_mode: 'idle' }],
  ['AboutResponse', AboutResponse, { operation_mode: 'idle', state: 'online', model_info: modelInfo, target_model: '1.3', version_control: 'follow_loop' }],
  ['ModelVersionResponse', ModelVersionResponse, { current_version: 'None', target_version: '1.3', loop_version: 'None', local_versions: ['1.2', '1.3'], version_control: 'follow_loop' }],
  ['SocketResponse', SocketResponse, { success: false, error_msg: 'hyperparameters missing or not a dict', payload: null }],
  ['ImageIdsResponse', ImageIdsResponse, { image_ids: ['a', 'b'] }],
  ['DeploymentTarget', DeploymentTarget, { model_uuid: 'm-1', version: '1.3' }],
  ['LoopModelsResponse', LoopModelsResponse, { models: [{ id: 'm-1', version: '1.3', formats: ['onnx', 'mocked'], created: '2025-01-01', comment: null, host: null }] }],
  ['ModelUploadResponse', ModelUploadResponse, { id: 'm-2' }],
  ['ProjectsResponse', ProjectsResponse, { projects: [{ organization_id: 'zauberzeug', project_id: 'demo', resource: '/zauberzeug/projects/demo' }] }],
  ['ProjectGeneratorRequest', ProjectGeneratorRequest, { project_name: 'p', inbox: 1, annotate: 2, review: 3, complete: 4, image_style: 'plain', box_categories: 1, point_categories: 1, segmentation_categories: 1, classification_categories: 0, thumbs: false, tags: 0, trainings: 1, box_detections: 3, box_annotations: 0 }],
  ['DetectRequest', DetectRequest, { image: { bytes: new Uint8Array(12), dtype: 'uint8', shape: [2, 2, 3] }, camera_id: 'cam', tags: ['a'], source: 'rosys', autoupload: 'all', creation_date: '2025-01-01T00:00:00' }],
  ['BatchDetectRequest', BatchDetectRequest, { images: [new Uint8Array([0xff, 0xd8])], camera_id: null, tags: [], source: null, autoupload: 'filtered', creation_date: null }],
  ['UploadRequest', UploadRequest, { image: { bytes: new Uint8Array(4), dtype: 'uint8', shape: [2, 2] }, metadata: { tags: ['x'], state: 'inbox' }, upload_priority: true }],
]

function containsBinary(value: unknown): boolean {
  if (value instanceof Uint8Array) return true
  if (value && typeof value === 'object') return Object.values(value).some(containsBinary)
  return false
}

describe('every contract shape round-trips realistic JSON', () => {
  for (const [name, schema, value] of examples) {
    test(name, () => {
      // socket payloads carry binary attachments, which JSON cannot; they round-trip as objects
      const input = containsBinary(value) ? value : JSON.parse(JSON.stringify(value))
      expect(decode(schema, input)).toEqual(input as any)
      if (!containsBinary(value)) expect(JSON.parse(JSON.stringify(decode(schema, input)))).toEqual(input)
    })
  }
})

describe('decoding', () => {
  test('fills defaults the way upstream dataclasses do', () => {
    const decoded = decode(ImageMetadata, {})
    expect(decoded).toEqual({
      box_detections: [], point_detections: [], segmentation_detections: [], classification_detections: [],
      box_annotations: [], point_annotations: [], classification_annotation: null, tags: [], created: null, source: null,
    })
    expect(decode(NodeStatus, { id: 'x', name: 'y' })).toEqual({ id: 'x', name: 'y', state: 'online', uptime: 0, errors: {}, capabilities: [] })
  })

  test('an array where a dict with a default belongs is refused, not merged into {"0": …} (issue 11 fuzz)', () => {
    for (const errors of [['x', 'y'], []]) {
      const result = tryDecode(NodeStatus, { id: 'x', name: 'y', errors })
      expect(result.ok ? result.value : result.error.message).toBe('invalid NodeStatus: /errors: expected object')
    }
    const nested = tryDecode(TrainingStateData, { meta_information: [1, 2], epoch: 1 })
    expect(nested.ok ? nested.value : nested.error.message).toBe('invalid TrainingStateData: /meta_information: expected object')
  })

  test('tolerates and keeps unknown keys', () => {
    const decoded = decode(ModelInformation, { ...modelInfo, format: 'onnx' }) as Record<string, unknown>
    expect(decoded.format).toBe('onnx')
  })

  test('a missing required field is an error naming its path', () => {
    const result = tryDecode(ImageMetadata, { box_detections: [{ ...box, category_name: undefined }] })
    expect(result.ok).toBe(false)
    if (result.ok) return
    expect(result.error).toBeInstanceOf(ContractError)
    expect(result.error.message).toContain('/box_detections/0/category_name: required field is missing')
  })

  test('a wrong type names the field and what was expected', () => {
    expect(() => decode(Training, { ...training, training_number: 'three' })).toThrow('/training_number')
    expect(() => decode(BoxDetection, { ...box, x: 1.5 })).toThrow('/x')
  })

  test('enum fields reject unknown values and the schema stays open where upstream allows any string', () => {
    expect(() => decode(DetectRequest, { image: new Uint8Array(1), autoupload: 'sometimes' })).toThrow('/autoupload')
    expect(decode(Category, { ...category, type: 'custom' }).type).toBe('custom')
  })

  test('malformed JSON text is a ContractError, not a crash', () => {
    expect(() => decodeJson(Context, '{"organization": ')).toThrow(ContractError)
    expect(() => decodeJson(Context, '{"organization": ')).toThrow('malformed JSON')
  })

  test('a "__proto__" key from the wire is dropped: it can neither fill required fields nor change defaults', () => {
    const status = tryDecode(TrainingStatus, JSON.parse('{"__proto__": {"id": "x", "name": "n"}}'))
    expect(status.ok).toBe(false)
    const metadata = decode(ImageMetadata, JSON.parse('{"created": "2025-01-01", "__proto__": {"tags": ["evil"], "source": "evil"}}'))
    expect(Object.getPrototypeOf(metadata)).toBe(Object.prototype)
    expect(metadata.tags).toEqual([])
    expect(metadata.source).toBeNull()
    const nested = decode(BeginTrainingDetails, JSON.parse('{"categories": [], "training_number": 1, "model_variant": "n", "hyperparameters": {"__proto__": {"epochs": 3}, "lr": 1}}'))
    expect(Object.getPrototypeOf(nested.hyperparameters)).toBe(Object.prototype)
    expect(nested.hyperparameters).toEqual({ lr: 1 })
  })

  test('a ContractError repeats at most about 100 characters of a long key in its path', () => {
    const key = 'k'.repeat(10_000)
    const result = tryDecode(TrainingStateData, { confusion_matrix: { [key]: { tp: 'x' } } })
    expect(result.ok).toBe(false)
    if (!result.ok) expect(result.error.message.length).toBeLessThan(600)
  })

  test('decode leaves the caller’s object unchanged', () => {
    const input = { id: 'x', name: 'y' }
    decode(NodeStatus, input)
    expect(input).toEqual({ id: 'x', name: 'y' })
  })
})

describe('socket responses (§5.1)', () => {
  test('handler returns become acks', () => {
    expect(toSocketResponse('<svg/>')).toEqual({ success: true, error_msg: null, payload: '<svg/>' })
    expect(toSocketResponse(true)).toEqual({ success: true, error_msg: null, payload: null })
    expect(toSocketResponse(false)).toEqual({ success: false, error_msg: null, payload: null })
    expect(toSocketResponse({ success: false, error_msg: 'x', payload: 1 })).toEqual({ success: false, error_msg: 'x', payload: 1 })
    expect(toSocketResponse(undefined)).toEqual({ success: true, error_msg: null, payload: null })
    expect(toSocketResponse(42).success).toBe(false)
  })
})

describe('helpers', () => {
  test('countDetections sums all four lists', () => {
    expect(countDetections(imageMetadata)).toBe(4)
    expect(countDetections({})).toBe(0)
  })
  test('created and outbox identifiers use the upstream formats', () => {
    const date = new Date(2025, 2, 5, 14, 22, 1, 123)
    expect(formatCreated(date)).toBe('2025-03-05_14:22:01.123')
    expect(formatOutboxIdentifier(date, 45)).toBe('2025-03-05_14:22:01.123045')
  })
  test('trainer states are listed in the order a training passes them', () => {
    expect(TRAINER_STATES.indexOf('running')).toBeLessThan(TRAINER_STATES.indexOf('train_model_uploading'))
    expect(isOneOf(TRAINER_STATES, 'detecting')).toBe(true)
    expect(isOneOf(TRAINER_STATES, 'dancing')).toBe(false)
  })
})

describe('imageFileName: any Loop id names one file inside its folder', () => {
  test('plain ids (the Loop uuids) keep the upstream layout <id>.jpg', () => {
    expect(imageFileName('10f7d7d2-4076-7006-af37-fa28a6a848ae')).toBe('10f7d7d2-4076-7006-af37-fa28a6a848ae.jpg')
    expect(imageFileName('plain_1.x')).toBe('plain_1.x.jpg')
  })

  test('every other id is encoded: no separator, no hidden or dot name, no collision', () => {
    const ids = ['2026-12-04_18:04:13.302000', '../../etc/passwd', '..', '.', '.hidden', 'a/b', 'a\\b', 'a%2Fb', 'a%252Fb', '', 'Straße 猫', '\u0000nul', 'x'.repeat(300), 'y'.repeat(300)]
    const names = ids.map(imageFileName)
    for (const name of names) {
      expect(name).not.toContain('/')
      expect(name).not.toContain('\\')
      expect(name.startsWith('.')).toBe(false)
      expect(name.length).toBeLessThanOrEqual(255)
      expect(name.endsWith('.jpg')).toBe(true)
    }
    expect(new Set(names).size).toBe(ids.length)
    expect(imageFileName('2026-12-04_18:04:13.302000')).toBe('2026-12-04_18%3A04%3A13%2E302000.jpg')
    expect(fileStemOf('..')).toBe('%2E%2E')
  })
})
