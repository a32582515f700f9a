import { describe, expect, test } from 'bun:test'
import { compareVersions, modelFileNameProblem, modelZipName, planModelUpload, rewriteModelJson } from '../../src/local-loop/model-versioning.ts'

describe('planModelUpload', () => {
  test('the first upload of a training makes <n>.0', () => {
    expect(planModelUpload(3, [], 'mocked')).toEqual({ kind: 'new-model', version: '3.0' })
  })

  test('a new format joins the training\'s latest model', () => {
    const models = [{ id: 'a', version: '3.0', formats: ['mocked'] }, { id: 'b', version: '3.1', formats: ['mocked'] }]
    expect(planModelUpload(3, models, 'mocked_2')).toEqual({ kind: 'add-format', modelId: 'b', version: '3.1' })
  })

  test('a format the latest model already has starts the next version', () => {
    const models = [{ id: 'b', version: '3.1', formats: ['mocked', 'mocked_2'] }, { id: 'a', version: '3.0', formats: ['mocked'] }]
    expect(planModelUpload(3, models, 'mocked')).toEqual({ kind: 'new-model', version: '3.2' })
  })

  test('versions of other trainings do not count', () => {
    expect(planModelUpload(2, [{ id: 'x', version: '1.4', formats: [] }, { id: 'y', version: '12.0', formats: [] }], 'f')).toEqual({ kind: 'new-model', version: '2.0' })
  })

  test('versions sort numerically', () => {
    expect(['1.10', '1.9', '2.0', '1.2'].sort(compareVersions)).toEqual(['1.2', '1.9', '1.10', '2.0'])
  })
})

describe('rewriteModelJson', () => {
  const facts = { id: 'm1', host: 'loop:8080', organization: 'o', project: 'p', version: '1.2', format: 'onnx', projectCategories: [] }

  test('sets the keys the Loop owns, keeps the node\'s, drops model_root_path', () => {
    const out = rewriteModelJson({ id: 'old', version: '9.9', resolution: 640, categories: [{ id: 'c', name: 'n' }], model_root_path: '/x' }, facts)
    expect(out).toEqual({ id: 'm1', host: 'loop:8080', organization: 'o', project: 'p', version: '1.2', format: 'onnx', resolution: 640, categories: [{ id: 'c', name: 'n' }] })
  })

  test('uses the project categories when the upload has none', () => {
    const category = { id: 'c', name: 'n', description: null, hotkey: null, color: null, point_size: null, type: 'box' }
    expect(rewriteModelJson(undefined, { ...facts, projectCategories: [category] }).categories).toEqual([category])
  })
})

test('model zip names and file names stay safe', () => {
  expect(modelZipName({ organization: 'o', project: 'p x', version: '1.0', format: 'a/b' })).toBe('o_p_x_1.0_a_b.zip')
  expect(modelFileNameProblem('../x')).toContain('not a plain file name')
  expect(modelFileNameProblem('weights.onnx')).toBeUndefined()
})
