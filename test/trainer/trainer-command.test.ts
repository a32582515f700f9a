import { describe, expect, spyOn, test } from 'bun:test'
import { ConfigError } from '../../src/config/read-settings.ts'
import { UsageError } from '../../src/cli/arguments.ts'
import { main } from '../../src/cli/main.ts'
import { runTrainerCommand } from '../../src/cli/trainer-command.ts'

describe('learning-loop-node trainer (arguments)', () => {
  test('--help names the trainer flags, the tuning knobs and the settings', async () => {
    const log = spyOn(console, 'log').mockImplementation(() => {})
    try {
      expect(await runTrainerCommand(['--help'])).toBe(0)
      const help = log.mock.calls.map((c) => String(c[0])).join('\n')
      for (const text of ['--logic command', '--logic testing', '--trainer-config', '--retry-attempts', 'TRAINER_RETRY_ATTEMPTS', 'TRAINER_IDLE_TIMEOUT_SEC', 'KEEP_OLD_TRAININGS', 'INFERENCE_BATCH_SIZE']) {
        expect(help).toContain(text)
      }
    } finally {
      log.mockRestore()
    }
  })

  test('usage errors name the problem before anything starts', async () => {
    await expect(runTrainerCommand([])).rejects.toThrow(new UsageError('choose a trainer: --logic command --command TEMPLATE, --logic command --trainer-config FILE, or --logic testing'))
    await expect(runTrainerCommand(['--logic', 'magic'])).rejects.toThrow('(not "magic")')
    await expect(runTrainerCommand(['--logic', 'command'])).rejects.toThrow('--logic command needs --command TEMPLATE or --trainer-config FILE')
    await expect(runTrainerCommand(['--logic', 'command', '--command', 'train --data {dat_dir}'])).rejects.toThrow('unknown placeholder {dat_dir}')
    await expect(runTrainerCommand(['--logic', 'command', '--trainer-config', '/nonexistent/trainer.json'])).rejects.toThrow('cannot be read')
    await expect(runTrainerCommand(['--logic', 'testing', '--retry-attempts', 'many'])).rejects.toThrow(new ConfigError('--retry-attempts="many" is not a non-negative integer'))
    await expect(runTrainerCommand(['--logic', 'testing', '--retry-attempts', '0'])).rejects.toThrow('--retry-attempts must be at least 1')
    await expect(runTrainerCommand(['--logic', 'testing', '--no-such-flag'])).rejects.toThrow('unknown flag --no-such-flag')
  })

  test('main dispatches `trainer` and turns usage errors into exit status 2', async () => {
    const error = spyOn(console, 'error').mockImplementation(() => {})
    try {
      expect(await main(['trainer', '--logic', 'magic'])).toBe(2)
      expect(String(error.mock.calls[0]?.[0])).toContain('learning-loop-node trainer: choose a trainer')
    } finally {
      error.mockRestore()
    }
  })
})
