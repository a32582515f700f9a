import { mkdir, readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { BeginTrainingDetails, fileStemOf, tryDecode, type Context, type Training } from '../contract/index.ts'
import { quoteInput } from '../foundation/log.ts'
import { BeginTrainingRejected } from './training-errors.ts'

/** Upstream's wording for the required fields (§8.3): "<field> missing or not a <kind>". */
const REQUIRED_FIELD_KINDS: Record<string, string> = {
  hyperparameters: 'dict',
  categories: 'list',
  training_number: 'int',
  model_variant: 'str',
}

/**
 * Checks `begin_training` details against the contract. Throws BeginTrainingRejected naming the field:
 * upstream's message for the four required fields, the contract's path and reason for anything deeper.
 */
export function parseBeginTrainingDetails(details: unknown): BeginTrainingDetails {
  if (details === null || typeof details !== 'object' || Array.isArray(details)) {
    throw new BeginTrainingRejected('details missing or not a dict')
  }
  const result = tryDecode(BeginTrainingDetails, details)
  if (result.ok) {
    // the number names the Loop's training in upload paths (…/trainings/<n>/…), which the Loop refuses for -1
    if (result.value.training_number < 0) throw new BeginTrainingRejected(`training_number must be a non-negative integer, got ${result.value.training_number}`)
    return result.value
  }
  const first = result.error.issues[0]
  const field = first?.path.split('/')[1]
  if (field && first && first.path === `/${field}` && REQUIRED_FIELD_KINDS[field]) {
    throw new BeginTrainingRejected(`${field} missing or not a ${REQUIRED_FIELD_KINDS[field]}`)
  }
  throw new BeginTrainingRejected(result.error.message)
}

// organization and project become folder names
const SAFE_SEGMENT = /^[A-Za-z0-9_][A-Za-z0-9._-]*$/

export function checkContext(context: Context): void {
  for (const [name, value] of [['organization', context.organization], ['project', context.project]] as const) {
    if (!SAFE_SEGMENT.test(value) || value.includes('..')) {
      throw new BeginTrainingRejected(`${name} ${quoteInput(value)} is not usable as a folder name`)
    }
  }
}

export function projectFolderOf(dataFolder: string, context: Context): string {
  return join(dataFolder, context.organization, context.project)
}

/** The Training for a new `begin_training` (§8.3), in state `initialized`. Pure: no folders are made. */
export function newTraining(input: {
  dataFolder: string
  context: Context
  details: BeginTrainingDetails
  id?: string
  nowMs?: number
}): Training {
  const id = input.id ?? crypto.randomUUID()
  const projectFolder = projectFolderOf(input.dataFolder, input.context)
  return {
    id,
    context: { organization: input.context.organization, project: input.context.project },
    project_folder: projectFolder,
    images_folder: join(projectFolder, 'images'),
    training_folder: join(projectFolder, 'trainings', fileStemOf(id)),
    categories: input.details.categories,
    hyperparameters: input.details.hyperparameters,
    training_number: input.details.training_number,
    training_state: 'initialized',
    model_variant: input.details.model_variant,
    start_time: (input.nowMs ?? Date.now()) / 1000,
    base_model_uuid: input.details.base_model_uuid ?? null,
    image_data: null,
    skipped_image_count: null,
    model_uuid_for_detecting: null,
  }
}

/**
 * Validates the details, removes older training folders of the project (unless `keepOldTrainings`), and
 * creates the folders of the new training. Throws BeginTrainingRejected for invalid input.
 */
export async function createTraining(input: {
  dataFolder: string
  context: Context
  details: unknown
  keepOldTrainings: boolean
  nowMs?: number
}): Promise<Training> {
  checkContext(input.context)
  const details = parseBeginTrainingDetails(input.details)
  const id = loopTrainingId(input.details)
  const training = newTraining({
    dataFolder: input.dataFolder, context: input.context, details, ...(id ? { id } : {}), ...(input.nowMs !== undefined ? { nowMs: input.nowMs } : {}),
  })
  const trainingsFolder = join(training.project_folder, 'trainings')
  await mkdir(trainingsFolder, { recursive: true })
  if (!input.keepOldTrainings) {
    for (const entry of await readdir(trainingsFolder, { withFileTypes: true })) {
      if (entry.isDirectory()) await rm(join(trainingsFolder, entry.name), { recursive: true, force: true })
    }
  }
  await mkdir(training.training_folder, { recursive: true })
  await mkdir(training.images_folder, { recursive: true })
  return training
}

/**
 * The Loop's id of the training, when `begin_training` names one (upstream ignored it and made its own, §5.2), so
 * logs, the training folder and the persisted state use the id the Loop shows. Without one the node makes a uuid.
 */
export function loopTrainingId(details: unknown): string | undefined {
  const id = (details as { id?: unknown } | null)?.id
  return typeof id === 'string' && id.trim() !== '' && id.length <= 200 ? id : undefined
}

/** Upstream accepts any UUID version (§8.5); anything else means "train from scratch". */
export function isUuid(value: string | null | undefined): value is string {
  return typeof value === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value.trim())
}
