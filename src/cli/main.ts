#!/usr/bin/env bun
import packageJson from '../../package.json' with { type: 'json' }
import { ConfigError } from '../config/read-settings.ts'
import { quoteInput } from '../foundation/log.ts'
import { AddressInUseError } from '../node/listen-address.ts'
import { UsageError } from './arguments.ts'

type Command = { summary: string; run: (args: string[]) => Promise<number> }

const commands: Record<string, Command> = {
  detector: {
    summary: 'run the detector node: REST + socket.io detection, model versions from the Loop, outbox (embedded local loop without LOOP_HOST)',
    run: async (args) => (await import('./detector-command.ts')).runDetectorCommand(args),
  },
  trainer: {
    summary: 'run a trainer node: trainings from the Loop as a persisted state machine that resumes after any crash',
    run: async (args) => (await import('./trainer-command.ts')).runTrainerCommand(args),
  },
  annotator: {
    summary: 'run the annotator node: interactive box segmentation for the Loop\'s annotation tool, over socket.io',
    run: async (args) => (await import('./annotator-command.ts')).runAnnotatorCommand(args),
  },
  converter: {
    summary: 'run the converter node: adds missing model formats in the Loop (yolo_onnx → onnx built in)',
    run: async (args) => (await import('./converter-command.ts')).runConverterCommand(args),
  },
  loop: {
    summary: 'run an embedded Learning Loop (REST + socket.io) for offline use and tests; `loop admin …` drives it',
    run: async (args) => (await import('./loop-command.ts')).runLoopCommand(args),
  },
  detect: {
    summary: 'detect objects in image files offline and print one ImageMetadata JSON per file',
    run: async (args) => (await import('./detect-command.ts')).runDetectCommand(args),
  },
}

export const VERSION: string = packageJson.version

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((c) => c.length))
  return [
    `learning-loop-node ${VERSION} — nodes for the Zauberzeug Learning Loop, in TypeScript on Bun`,
    '',
    'usage: learning-loop-node <command> [flags]   (learning-loop-node <command> --help for its flags)',
    '',
    'commands:',
    ...Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`),
    '',
    'Every flag also has an environment variable (see --help of a command, and README.md).',
  ].join('\n')
}

export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv
  if (name === '--version' || name === '-v' || name === 'version') {
    console.log(VERSION)
    return 0
  }
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    console.log(usage())
    return name === undefined ? 2 : 0
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined
  if (!command) {
    console.error(`unknown command ${quoteInput(name)}\n\n${usage()}`)
    return 2
  }
  try {
    return await command.run(rest)
  } catch (error) {
    if (error instanceof UsageError || error instanceof ConfigError) {
      console.error(`learning-loop-node ${name}: ${error.message}`)
      return 2
    }
    if (error instanceof AddressInUseError) {
      console.error(`learning-loop-node ${name}: ${error.message}`)
      return 1
    }
    throw error
  }
}

if (import.meta.main) {
  const code = await main(process.argv.slice(2))
  // long-running commands keep the process alive themselves and exit on signals
  if (code !== 0) process.exit(code)
}
