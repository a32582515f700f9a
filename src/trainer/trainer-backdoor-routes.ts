import type { Elysia } from 'elysia'
import { StatusSentAnswer, TrainerResetAnswer, TrainingProcessKilledAnswer } from '../contract/index.ts'
import { errorMessage } from '../foundation/log.ts'
import { ErrorAnswer, jsonContent, routeDocs } from '../node/route-docs.ts'
import type { NodeRuntime } from '../node/node-runtime.ts'

/** What the backdoor does to a trainer; TrainerNode implements it. */
export interface TrainerBackdoor {
  /** abort any training, forget the persisted one, clear errors, reconnect, send the status */
  reset(): Promise<void>
  /** false when no training process runs */
  killTrainingProcess(): Promise<boolean>
  /** whether the Loop accepted the status */
  sendStatus(): Promise<boolean>
}

/**
 * The test-only controls of §8.11, mounted with USE_BACKDOOR_CONTROLS. Those that only make sense for
 * upstream's mock trainer logic (`PUT /provide_new_model`, `PUT /error_configuration`, `POST /steps`) are not
 * offered: the testing trainer takes its behaviour from the training's hyperparameters instead.
 *
 *   POST /reset                   abort any training, delete the last-training file, clear errors, reconnect, send the status
 *   POST /kill_training_process   409 unless the training process runs; else terminate it and wait (run_training then ends)
 *   POST /force_status_update     send the status now
 */
export function registerTrainerBackdoorRoutes(app: Elysia, trainer: TrainerBackdoor, host: Pick<NodeRuntime, 'log' | 'metrics'>): void {
  const log = host.log.child('backdoor')
  const failures = host.metrics.counter('trainer_backdoor_failures_total', 'Backdoor requests that failed, by route')
  const failed = (route: string, error: unknown, set: { status?: number | string }) => {
    failures.inc({ route })
    log.error('backdoor request failed', { route, error: errorMessage(error) })
    set.status = 500
    return { detail: errorMessage(error) }
  }
  app
    .post('/reset', async ({ set }) => {
      try {
        await trainer.reset()
        log.warn('trainer reset through the backdoor')
        return { status: 'reset' }
      } catch (error) {
        return failed('/reset', error, set)
      }
    }, { detail: routeDocs({ summary: 'Test only: abort any training, forget the persisted one, report', tags: ['backdoor'], responses: { 200: jsonContent(TrainerResetAnswer) } }) })
    .post('/kill_training_process', async ({ set }) => {
      try {
        if (!(await trainer.killTrainingProcess())) {
          set.status = 409
          return { detail: 'trainer is not running' }
        }
        return { status: 'killed' }
      } catch (error) {
        return failed('/kill_training_process', error, set)
      }
    }, { detail: routeDocs({ summary: 'Test only: terminate the running training process', tags: ['backdoor'], responses: { 200: jsonContent(TrainingProcessKilledAnswer), 409: jsonContent(ErrorAnswer, 'no training process runs') } }) })
    .post('/force_status_update', async () => ({ sent: await trainer.sendStatus() }), {
      detail: routeDocs({ summary: 'Test only: send update_trainer now', tags: ['backdoor'], responses: { 200: jsonContent(StatusSentAnswer) } }),
    })
}
