/**
 * What the converter did per model, and what it should do next: convert, wait for a retry, or leave it
 * (converted, or skipped after too many failures). Decisions are pure; `ConversionLedger` adds the file.
 */
import { readFile } from 'node:fs/promises'
import { join } from 'node:path'
import { ConversionLedgerFile, ContractError, decode, type ConversionRecord } from '../contract/index.ts'
import { writeFileAtomic } from '../foundation/atomic-file.ts'
import { backoffDelayMs } from '../foundation/backoff.ts'

export interface RetryPolicy {
  /** failed attempts after which a model is skipped for good */
  maxAttempts: number
  /** wait after the first failure; doubles with every further one */
  initialBackoffMs: number
  maxBackoffMs: number
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { maxAttempts: 3, initialBackoffMs: 60_000, maxBackoffMs: 30 * 60_000 }

export type ConversionDecision = 'convert' | 'wait' | 'converted' | 'skipped'

export const ledgerKey = (organization: string, project: string, modelId: string) => `${organization}/${project}/${modelId}`

/** Whether to try the model now. */
export function decideConversion(record: ConversionRecord | undefined, now: number): ConversionDecision {
  if (!record) return 'convert'
  if (record.outcome === 'converted') return 'converted'
  if (record.outcome === 'skipped') return 'skipped'
  return record.next_attempt_at !== null && now < record.next_attempt_at ? 'wait' : 'convert'
}

export interface ModelRef {
  organization: string
  project: string
  model_id: string
  version: string
}

export function recordSuccess(previous: ConversionRecord | undefined, model: ModelRef, now: number): ConversionRecord {
  return { ...model, outcome: 'converted', attempts: (previous?.attempts ?? 0) + 1, last_error: null, updated_at: now, next_attempt_at: null }
}

/**
 * A failed attempt: retried after an exponential backoff, or skipped when the attempts are used up or
 * the model cannot be converted at all (`permanent`).
 */
export function recordFailure(previous: ConversionRecord | undefined, model: ModelRef, error: string, now: number, options: { permanent: boolean; policy?: RetryPolicy }): ConversionRecord {
  const policy = options.policy ?? DEFAULT_RETRY_POLICY
  const attempts = (previous?.attempts ?? 0) + 1
  const giveUp = options.permanent || attempts >= policy.maxAttempts
  const backoff = backoffDelayMs(attempts - 1, { initialMs: policy.initialBackoffMs, maxMs: policy.maxBackoffMs })
  return { ...model, outcome: giveUp ? 'skipped' : 'failed', attempts, last_error: error, updated_at: now, next_attempt_at: giveUp ? null : now + backoff }
}

/** The ledger file of one source → target pair, written atomically after every change. */
export class ConversionLedger {
  private constructor(readonly path: string, private readonly data: ConversionLedgerFile) {}

  /** Opens `<dataFolder>/converter/<source>-to-<target>.json`; a missing file is an empty ledger, a corrupt one an error. */
  static async open(dataFolder: string, sourceFormat: string, targetFormat: string): Promise<ConversionLedger> {
    const path = join(dataFolder, 'converter', `${sourceFormat}-to-${targetFormat}.json`)
    let text: string | undefined
    try {
      text = await readFile(path, 'utf8')
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error
    }
    if (text === undefined) return new ConversionLedger(path, { source_format: sourceFormat, target_format: targetFormat, models: {} })
    let data: ConversionLedgerFile
    try {
      data = decode(ConversionLedgerFile, JSON.parse(text))
    } catch (error) {
      const detail = error instanceof ContractError ? error.message : `malformed JSON (${(error as Error).message})`
      throw new Error(`the converter ledger ${path} is unreadable: ${detail}; fix or remove it (the converter then redoes models the Loop still lists without ${targetFormat})`)
    }
    if (data.source_format !== sourceFormat || data.target_format !== targetFormat) {
      throw new Error(`the converter ledger ${path} is for ${data.source_format} → ${data.target_format}, not ${sourceFormat} → ${targetFormat}`)
    }
    return new ConversionLedger(path, data)
  }

  get(key: string): ConversionRecord | undefined {
    return this.data.models[key]
  }

  records(): ConversionRecord[] {
    return Object.values(this.data.models)
  }

  async set(key: string, record: ConversionRecord): Promise<void> {
    this.data.models[key] = record
    await writeFileAtomic(this.path, JSON.stringify(this.data, null, 2))
  }
}
