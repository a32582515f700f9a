/**
 * The README's whole loop (whole-loop-story.ts) when things crash: the detector is killed with -9 while uploads
 * are queued, the trainer with -9 in the middle of a training. After a restart of each, every image arrives in
 * the Loop exactly once, the training resumes and completes with one model, that model is deployed and served,
 * and SIGTERM still ends every process with exit status 0.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { waitFor } from '../support/temp.ts'
import { detect, Story, walkthroughLines } from './whole-loop-story.ts'

setDefaultTimeout(180_000)

const hasTools = Bun.which('npx') !== null
if (!hasTools) console.log('skipping the whole loop under kill -9: it runs npx as the README does, and npx is missing')
const hasProc = existsSync('/proc/self/cmdline')

/** Processes whose command line contains every one of `parts` (Linux /proc). */
function processesWith(...parts: string[]): number[] {
  return readdirSync('/proc').filter((entry) => /^\d+$/.test(entry)).filter((pid) => {
    try {
      const command = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')
      return parts.every((part) => command.includes(part))
    } catch {
      return false
    }
  }).map(Number)
}

async function outboxItems(story: Story): Promise<number> {
  const metrics = await (await fetch(`${story.detectorUrl}/metrics`)).text()
  return [...metrics.matchAll(/^lln_outbox_items\{[^}]*\} (\d+)/gm)].reduce((sum, match) => sum + Number(match[1]), 0)
}

describe.skipIf(!hasTools)('the whole loop under kill -9', () => {
  const lines = walkthroughLines()
  const IMAGES = 14
  let story: Story

  beforeAll(async () => {
    story = await Story.create()
    for (const line of lines.slice(0, 3)) await story.start(line)
  })
  afterAll(async () => {
    await story?.cleanup()
  })

  test('kill -9 of the detector with uploads queued: after a restart every image arrives in the Loop exactly once', async () => {
    expect((await fetch(`${story.detectorUrl}/outbox_mode`, { method: 'PUT', body: 'stopped' })).status).toBe(200)
    for (let i = 0; i < IMAGES - 2; i++) await detect(story, i % 2 === 0 ? 'astronaut.jpg' : 'coffee.jpg', { autoupload: 'all' })
    const form = new FormData()
    for (const name of ['rocket.jpg', 'chelsea.jpg']) form.append('files', new File([readFileSync(`test/fixtures/${name}`)], name, { type: 'image/jpeg' }))
    expect((await fetch(`${story.detectorUrl}/upload`, { method: 'POST', body: form })).status).toBe(200)
    await waitFor(async () => (await outboxItems(story)) === IMAGES, 30_000, `${IMAGES} items in the outbox`)
    expect((await story.images()).images).toHaveLength(0)

    await story.crash('detector')
    await story.start(lines[1]!)
    // the outbox mode persists across the crash: the queue waits until uploading is switched on again
    expect(await (await fetch(`${story.detectorUrl}/outbox_mode`)).text()).toBe('stopped')
    expect(await outboxItems(story)).toBe(IMAGES)
    expect((await fetch(`${story.detectorUrl}/outbox_mode`, { method: 'PUT', body: 'continuous_upload' })).status).toBe(200)
    await waitFor(async () => (await outboxItems(story)) === 0, 60_000, 'an empty outbox')
    const { images } = await story.images()
    expect(images).toHaveLength(IMAGES)
    expect(new Set(images.map((image) => image.file_name)).size).toBe(IMAGES)
  })

  test('kill -9 of the trainer mid-training: after a restart the training resumes and completes with one model', async () => {
    story.run(`npx learning-loop-node loop admin start-training --node trainer --hyperparameters '{"epochs":40,"epoch_ms":150}'`)
    await waitFor(async () => (await story.trainings()).trainings[0]?.state === 'running', 60_000, 'the training to run')
    const trainingFolder = story.temp.path
    if (hasProc) await waitFor(() => processesWith('face-trainer.ts', 'train', trainingFolder).length > 0, 30_000, 'the training program')

    await story.crash('trainer')
    // the training program dies with its node (its process group is bound to it), keeping no GPU busy
    if (hasProc) await waitFor(() => processesWith('face-trainer.ts', 'train', trainingFolder).length === 0, 10_000, 'the orphaned training program to end')
    expect((await story.trainings()).trainings[0]!.outcome).toBeNull()

    await story.start(lines[2]!)
    await waitFor(async () => (await story.trainings()).trainings[0]?.outcome, 120_000, 'the resumed training to end')
    const [training] = (await story.trainings()).trainings
    expect(training).toMatchObject({ number: 1, outcome: 'completed', error: null })
    expect(training!.models.map((m) => m.version)).toEqual(['1.0'])
    expect(story.output('trainer')).toContain('resuming the last training')
    const { images } = await story.images()
    expect(images).toHaveLength(IMAGES)
    expect(images.every((image) => image.has_trainer_detections)).toBe(true)
  })

  test('the trained model is deployed and the restarted detector serves it, still finding the face', async () => {
    story.run('npx learning-loop-node loop admin set-target --version 1.0')
    await story.detectorServes('1.0')
    const face = (await detect(story, 'astronaut.jpg', { autoupload: 'disabled' })).box_detections.find((box) => box.category_name === 'face')
    expect(face).toMatchObject({ model_name: '1.0' })
  })

  test('SIGTERM: every process, the restarted ones included, exits 0', async () => {
    expect(await story.stopAll()).toEqual({ loop: 0, detector: 0, trainer: 0 })
  })
})
