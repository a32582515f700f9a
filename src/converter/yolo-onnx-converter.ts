/**
 * The built-in conversion: an Ultralytics-style YOLO ONNX export (class names in the ONNX
 * `metadata_props` key `names`, input size in `imgsz`) becomes this project's ONNX model package —
 * `model.onnx` plus a model.json with the categories in class-index order, the resolution and an
 * `inference` section — so an exported model can be deployed to detectors without hand-writing model.json.
 * Before anything is written, the package is checked with the same rules the inference engine uses.
 */
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import type { Category, ModelInferenceSettings, ModelInformation } from '../contract/index.ts'
import { ModelPackageError } from '../inference/inference-errors.ts'
import { MODEL_JSON } from '../inference/model-package.ts'
import { resolveModelSpec } from '../inference/model-spec.ts'
import { parseUltralyticsImageSize, parseUltralyticsNames, readOnnxModelHeader } from '../inference/onnx-model-header.ts'
import { ModelNotConvertibleError, type ConverterLogic } from './converter-logic.ts'

/** The source format name on the Loop: what a user uploads an Ultralytics ONNX export as. */
export const YOLO_ONNX_FORMAT = 'yolo_onnx'
/** The detector's package format (src/detector/detector-logic.ts DEFAULT_MODEL_FORMAT). */
export const ONNX_PACKAGE_FORMAT = 'onnx'
export const PACKAGE_MODEL_FILE = 'model.onnx'

/**
 * Categories in class-index order for the ONNX class names: the project's category of the same name
 * (case-insensitive) keeps its id, so detections map onto the Loop's categories; an unknown name
 * becomes a box category whose id is the name.
 */
export function categoriesForClassNames(names: readonly string[], projectCategories: readonly Category[]): Category[] {
  const byName = new Map(projectCategories.map((c) => [c.name.toLowerCase(), c]))
  return names.map((name) => {
    const known = byName.get(name.toLowerCase())
    return known ? { ...known } : { id: name, name, description: null, hotkey: null, color: null, point_size: null, type: 'box' }
  })
}

export class YoloOnnxConverter implements ConverterLogic {
  readonly sourceFormat: string
  readonly targetFormat: string

  constructor(options: { sourceFormat?: string; targetFormat?: string } = {}) {
    this.sourceFormat = options.sourceFormat ?? YOLO_ONNX_FORMAT
    this.targetFormat = options.targetFormat ?? ONNX_PACKAGE_FORMAT
  }

  async convert(model: ModelInformation, sourceFolder: string, targetFolder: string): Promise<string[]> {
    const onnxFiles = (await readdir(sourceFolder, { recursive: true })).map(String).filter((name) => name.toLowerCase().endsWith('.onnx'))
    if (onnxFiles.length !== 1) {
      throw new ModelNotConvertibleError(onnxFiles.length === 0
        ? `model ${model.id} (${this.sourceFormat}) holds no .onnx file`
        : `model ${model.id} (${this.sourceFormat}) holds ${onnxFiles.length} .onnx files (${onnxFiles.join(', ')}); expected one`)
    }
    const sourceFile = join(sourceFolder, onnxFiles[0]!)
    let header
    try {
      header = readOnnxModelHeader(new Uint8Array(await readFile(sourceFile)), onnxFiles[0])
    } catch (error) {
      throw new ModelNotConvertibleError((error as Error).message)
    }
    const names = parseUltralyticsNames(header.metadata.names)
    if (!names) {
      throw new ModelNotConvertibleError(`${onnxFiles[0]} has no Ultralytics class names (ONNX metadata_props "names"); export it with Ultralytics or add the names`)
    }
    const imageSize = parseUltralyticsImageSize(header.metadata.imgsz)
    const input = header.inputs[0]
    const staticSide = (d: number | string | null | undefined) => (typeof d === 'number' && d > 0 ? d : undefined)
    const shapeWidth = staticSide(input?.dims[3])
    const shapeHeight = staticSide(input?.dims[2])
    if (imageSize && shapeWidth && shapeHeight && (imageSize.width !== shapeWidth || imageSize.height !== shapeHeight)) {
      throw new ModelNotConvertibleError(`${onnxFiles[0]} says imgsz ${header.metadata.imgsz} but its input ${input!.name} is [${input!.dims.join(', ')}]`)
    }
    const width = shapeWidth ?? imageSize?.width ?? model.resolution ?? undefined
    const height = shapeHeight ?? imageSize?.height ?? model.resolution ?? undefined
    if (!width || !height) {
      throw new ModelNotConvertibleError(`${onnxFiles[0]} has a dynamic input and no "imgsz" metadata; the input size is unknown`)
    }
    const inference: ModelInferenceSettings = { model_file: PACKAGE_MODEL_FILE, decoder: 'yolo' }
    if (width !== height) {
      inference.input_width = width
      inference.input_height = height
    }
    const description: ModelInformation & { inference: ModelInferenceSettings; converted_from: string } = {
      id: model.id,
      host: model.host,
      organization: model.organization,
      project: model.project,
      version: model.version,
      categories: categoriesForClassNames(names, model.categories ?? []),
      resolution: Math.max(width, height),
      model_root_path: null,
      model_size: model.model_size ?? null,
      inference,
      converted_from: this.sourceFormat,
    }
    try {
      // the same checks the inference engine makes when it loads the package
      resolveModelSpec(description, inference, header)
    } catch (error) {
      if (error instanceof ModelPackageError) throw new ModelNotConvertibleError(`the converted package would not load: ${error.message}`)
      throw error
    }
    await mkdir(targetFolder, { recursive: true })
    const targetModel = join(targetFolder, PACKAGE_MODEL_FILE)
    const targetJson = join(targetFolder, MODEL_JSON)
    await copyFile(sourceFile, targetModel)
    const { model_root_path: _dropped, ...written } = description
    await writeFile(targetJson, JSON.stringify(written, null, 2))
    return [targetModel, targetJson]
  }
}
