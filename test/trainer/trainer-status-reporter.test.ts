import { describe, expect, test } from 'bun:test'
import { LoopSocketError } from '../../src/loop/loop-error.ts'
import type { LoopSocket } from '../../src/loop/loop-socket.ts'
import { createLogger } from '../../src/foundation/log.ts'
import { MetricsRegistry } from '../../src/foundation/metrics.ts'
import { buildTrainingStatus, TrainerStatusReporter } from '../../src/trainer/trainer-status-reporter.ts'

describe('buildTrainingStatus (pure)', () => {
  const pretrained = [{ name: 'small', label: 'Small', description: 'd' }]
  test('a training reports its state, progress, errors, uptime and context; idle reports none of them', () => {
    const context = { organization: 'o', project: 'p' }
    expect(buildTrainingStatus({
      id: 'n', name: 'trainer', architecture: 'yolo', pretrainedModels: pretrained,
      fields: { state: 'running', errors: { sync_confusion_matrix: 'x' }, progress: 0.4, uptime: 12.5, context },
    })).toEqual({ id: 'n', name: 'trainer', state: 'running', uptime: 12.5, errors: { sync_confusion_matrix: 'x' }, progress: 0.4, pretrained_models: pretrained, architecture: 'yolo', context })
    expect(buildTrainingStatus({
      id: 'n', name: 'trainer', architecture: null, pretrainedModels: [],
      fields: { state: 'idle', errors: { stale: 'x' }, progress: 1, uptime: 3, context },
    })).toEqual({ id: 'n', name: 'trainer', state: 'idle', uptime: null, errors: {}, progress: null, pretrained_models: [], architecture: null, context: null })
  })
})

describe('TrainerStatusReporter', () => {
  const status = (state: string) => ({ id: 'n', name: 'trainer', state, uptime: null, errors: {}, progress: null, pretrained_models: [], architecture: null, context: null })

  test('statuses go out one at a time in the order taken; refusals and a missing connection are counted, not thrown', async () => {
    const sent: string[] = []
    let refuse = false
    const socket = {
      connected: true,
      async emitExpectingSuccess(event: string, args: unknown[]) {
        expect(event).toBe('update_trainer')
        const state = (args[0] as { state: string }).state
        // the first ack is slow: later statuses must still arrive after it
        if (sent.length === 0) await Bun.sleep(50)
        sent.push(state)
        if (refuse) throw new LoopSocketError('rejected', event, 'the Loop rejected "update_trainer": invalid status')
        return { success: true, error_msg: null, payload: null }
      },
    }
    const metrics = new MetricsRegistry()
    const reporter = new TrainerStatusReporter({ socket: () => socket as unknown as LoopSocket, log: createLogger('test'), metrics })
    const results = await Promise.all(['initialized', 'data_downloading', 'data_downloaded'].map((s) => reporter.send(status(s))))
    expect(results).toEqual([true, true, true])
    expect(sent).toEqual(['initialized', 'data_downloading', 'data_downloaded'])

    refuse = true
    expect(await reporter.send(status('running'))).toBe(false)
    socket.connected = false
    expect(await reporter.send(status('running'))).toBe(false)
    expect(sent).toHaveLength(4)
    const text = metrics.render()
    expect(text).toContain('trainer_status_updates_total{result="ok"} 3')
    expect(text).toContain('trainer_status_updates_total{result="rejected"} 1')
    expect(text).toContain('trainer_status_updates_total{result="not_connected"} 1')
  })
})
