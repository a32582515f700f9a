/**
 * The story the product exists for, in one piece, with real processes: the README's "whole loop in five commands"
 * run as written (see whole-loop-story.ts): a local loop, a detector on its built-in model, a command trainer
 * running examples/face-trainer, images from the detector (autoupload all) and from /upload, a training begun with
 * the admin CLI that completes with a new version, that version deployed, the detector serving it and still finding
 * the astronaut's face, and SIGTERM → every process exits 0. whole-loop.test.ts runs it with the nodes on Bun,
 * test/deno/whole-loop-under-deno.test.ts with the nodes on Deno.
 */
import { afterAll, beforeAll, describe, expect, setDefaultTimeout, test } from 'bun:test'
import type { NodeRuntime } from '../support/node-process.ts'
import { waitFor } from '../support/temp.ts'
import { detect, Story, walkthroughLines } from './whole-loop-story.ts'

export function describeWholeLoop(runtime: NodeRuntime): void {
  setDefaultTimeout(120_000)

  const hasCurl = Bun.which('curl') !== null && Bun.which('npx') !== null
  if (!hasCurl) console.log('skipping the whole-loop walkthrough: it runs curl and npx as the README does, and one of them is missing')

  describe.skipIf(!hasCurl)(`the whole loop in five commands (README), run as written, nodes on ${runtime === 'bun' ? 'Bun' : 'Deno'}`, () => {
    const lines = walkthroughLines()
    let story: Story

    beforeAll(async () => {
      story = await Story.create(runtime)
    })
    afterAll(async () => {
      await story?.cleanup()
    })

    test('the walkthrough has five commands: three nodes, the images, the training', () => {
      expect(lines).toHaveLength(5)
      expect(lines.slice(0, 3).every((line) => line.endsWith('&'))).toBe(true)
    })

    test('1–3: the loop, the detector and the trainer start and connect', async () => {
      for (const line of lines.slice(0, 3)) await story.start(line)
      expect((await fetch(`${story.detectorUrl}/health`)).status).toBe(200)
      // the trainer names itself with its first status
      await waitFor(async () => {
        const { nodes } = await story.admin<{ nodes: { nodeType: string; name: string | null }[] }>('/nodes')
        return nodes.some((n) => n.nodeType === 'trainer' && n.name === 'trainer')
      }, 30_000, 'the trainer to connect to the loop')
    })

    test('4: an image the detector saw and one uploaded directly reach the Loop, named after the detector', async () => {
      const { stdout } = story.run(lines[3]!)
      expect(stdout).toContain('"category_name":"face"')
      expect(stdout).toContain('[200,"OK"]')
      const images = await (async () => {
        for (let i = 0; i < 200; i++) {
          const { images } = await story.images()
          if (images.length >= 2) return images
          await Bun.sleep(100)
        }
        throw new Error('the two images did not reach the loop')
      })()
      expect(images).toHaveLength(2)
      // ids are the Loop's; the outbox's file names (local time, colons included) are kept beside them
      for (const image of images) {
        expect(image.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-/)
        expect(image.file_name).toMatch(/^image_\d{4}-\d\d-\d\d_\d\d:\d\d:\d\d\.\d{6}\.jpg$/)
        expect(image.source).toBe('detector')
      }
      expect(images.filter((i) => i.tags.includes('picked_by_system'))).toHaveLength(1)
    })

    test('5: the training completes with version 1.0, which is deployed; the detector switches and still finds the face', async () => {
      const { stdout, stderr } = story.run(lines[4]!)
      const answer = JSON.parse(stdout) as { training: { outcome: string; models: { version: string }[] }; deployed: { version: string } }
      expect(answer.training.outcome).toBe('completed')
      expect(answer.training.models.map((m) => m.version)).toEqual(['1.0'])
      expect(answer.deployed.version).toBe('1.0')
      expect(stderr).toContain('training 1: ready_for_cleanup')

      const [training] = (await story.trainings()).trainings
      expect(training).toMatchObject({ number: 1, state: 'ready_for_cleanup', outcome: 'completed', error: null })
      // the trainer logs the Loop's id for the training (its output is read once the synchronous `run` above returns)
      await waitFor(() => story.output('trainer').includes(`"training_id":"${training!.id}"`), 10_000, 'the training id in the trainer\'s log')
      // the trainer's detections with the new model, on both images (one from the outbox, ids with colons upstream)
      expect((await story.images()).images.every((image) => image.has_trainer_detections)).toBe(true)

      await story.detectorServes('1.0')
      const metadata = await detect(story, 'astronaut.jpg', { autoupload: 'disabled' })
      const face = metadata.box_detections.find((box) => box.category_name === 'face')
      expect(face).toMatchObject({ model_name: '1.0' })
      expect(Math.abs(face!.x - 178)).toBeLessThanOrEqual(3)
      expect(Math.abs(face!.width - 94)).toBeLessThanOrEqual(3)
    })

    test('SIGTERM: every process exits 0', async () => {
      expect(await story.stopAll()).toEqual({ loop: 0, detector: 0, trainer: 0 })
    })
  })
}
