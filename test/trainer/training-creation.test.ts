import { afterEach, beforeEach, describe, expect, test } from 'bun:test'
import { existsSync } from 'node:fs'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { decode, Training } from '../../src/contract/index.ts'
import { createTraining, isUuid, newTraining, parseBeginTrainingDetails } from '../../src/trainer/training-creation.ts'
import { makeTempDir } from '../support/temp.ts'

let temp: Awaited<ReturnType<typeof makeTempDir>>
beforeEach(async () => {
  temp = await makeTempDir('lln-creation-')
})
afterEach(async () => {
  await temp.cleanup()
})

const context = { organization: 'zauberzeug', project: 'demo' }
const details = { categories: [], hyperparameters: { resolution: 832 }, training_number: 0, model_variant: 'small' }

describe('training creation (§8.3)', () => {
  test('a new training has the upstream shape, the given id (else a new uuid) and state initialized', () => {
    const training = newTraining({ dataFolder: '/data', context, details: parseBeginTrainingDetails(details), id: 't-1', nowMs: 1_500 })
    expect(decode(Training, training)).toEqual(training)
    expect(training).toEqual({
      id: 't-1', context, project_folder: '/data/zauberzeug/demo', images_folder: '/data/zauberzeug/demo/images',
      training_folder: '/data/zauberzeug/demo/trainings/t-1', categories: [], hyperparameters: { resolution: 832 }, training_number: 0,
      training_state: 'initialized', model_variant: 'small', start_time: 1.5, base_model_uuid: null, image_data: null,
      skipped_image_count: null, model_uuid_for_detecting: null,
    })
    expect(newTraining({ dataFolder: '/data', context, details: parseBeginTrainingDetails(details) }).id).toMatch(/^[0-9a-f-]{36}$/)
  })

  test('older training folders are removed unless KEEP_OLD_TRAININGS is set', async () => {
    const old = join(temp.path, 'zauberzeug', 'demo', 'trainings', 'old-one')
    await mkdir(old, { recursive: true })
    await writeFile(join(old, 'last_training.log'), 'old')
    const kept = await createTraining({ dataFolder: temp.path, context, details, keepOldTrainings: true })
    expect(existsSync(old)).toBe(true)
    expect(existsSync(kept.training_folder)).toBe(true)
    const fresh = await createTraining({ dataFolder: temp.path, context, details, keepOldTrainings: false })
    expect(existsSync(old)).toBe(false)
    expect(existsSync(kept.training_folder)).toBe(false)
    expect(existsSync(fresh.training_folder)).toBe(true)
    expect(existsSync(fresh.images_folder)).toBe(true)
  })

  test('the Loop\'s training id (begin_training details.id) names the training, so logs and folders match the Loop; any id stays inside trainings/', async () => {
    const fromLoop = await createTraining({ dataFolder: temp.path, context, details: { ...details, id: '7d1c53c2-6a43-4b1e-9d55-58bd8d3a6f10' }, keepOldTrainings: true })
    expect(fromLoop.id).toBe('7d1c53c2-6a43-4b1e-9d55-58bd8d3a6f10')
    expect(fromLoop.training_folder).toBe(join(temp.path, 'zauberzeug', 'demo', 'trainings', '7d1c53c2-6a43-4b1e-9d55-58bd8d3a6f10'))
    const odd = await createTraining({ dataFolder: temp.path, context, details: { ...details, id: '../../escape' }, keepOldTrainings: true })
    expect(odd.id).toBe('../../escape')
    expect(odd.training_folder).toBe(join(temp.path, 'zauberzeug', 'demo', 'trainings', '%2E%2E%2F%2E%2E%2Fescape'))
    for (const id of [undefined, '', 42, 'x'.repeat(201)]) {
      expect((await createTraining({ dataFolder: temp.path, context, details: { ...details, id }, keepOldTrainings: true })).id).toMatch(/^[0-9a-f-]{36}$/)
    }
  })

  test('details that are not an object are refused; any UUID version counts as a base model', () => {
    expect(() => parseBeginTrainingDetails(null)).toThrow('details missing or not a dict')
    expect(() => parseBeginTrainingDetails([1])).toThrow('details missing or not a dict')
    expect(isUuid('00000000-0000-0000-0000-000000000011')).toBe(true)
    expect(isUuid('6A7C3E34-1D2B-4F5A-9C8D-7E6F5A4B3C2D')).toBe(true)
    expect(isUuid('model-1')).toBe(false)
    expect(isUuid(null)).toBe(false)
  })
})
