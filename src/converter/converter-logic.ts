import type { ModelInformation } from '../contract/index.ts'

/**
 * A model converter (§9): turns the files of one model in `sourceFormat` into files of `targetFormat`.
 * `model` is what the Loop knows about the model (id, version, project categories, resolution when the
 * source's model.json has one). Returns the paths of the files to upload (model.json included when the
 * target format has one).
 */
export interface ConverterLogic {
  readonly sourceFormat: string
  readonly targetFormat: string
  convert(model: ModelInformation, sourceFolder: string, targetFolder: string): Promise<string[]>
}

/**
 * The model itself cannot be converted (missing metadata, wrong layout). Retrying does not help, so the
 * converter skips the model at once instead of spending its retries.
 */
export class ModelNotConvertibleError extends Error {
  constructor(message: string) {
    super(message)
    this.name = 'ModelNotConvertibleError'
  }
}
