import { DatabaseSync, type SQLInputValue, type StatementSync } from 'node:sqlite'

/**
 * The local Loop's SQLite connection, on `node:sqlite` (Bun and Deno both implement it), with what the store
 * relies on: statements prepared once per SQL text, named parameters written `$name` and passed by bare name,
 * a missing one an error (SQLite would bind NULL), and transactions.
 */
export type Row = Record<string, unknown>
export type Params = Record<string, SQLInputValue>

const NAMED_PARAMETER = /\$([A-Za-z_][A-Za-z0-9_]*)/g

export class Statement {
  private readonly names: string[]

  constructor(private readonly statement: StatementSync, sql: string) {
    this.names = [...new Set([...sql.matchAll(NAMED_PARAMETER)].map((match) => match[1]!))]
  }

  /** The first row, or undefined when there is none. */
  get(params: Params = {}): Row | undefined {
    return this.statement.get(this.checked(params)) as Row | undefined
  }

  all(params: Params = {}): Row[] {
    return this.statement.all(this.checked(params)) as Row[]
  }

  run(params: Params = {}): { changes: number } {
    return { changes: Number(this.statement.run(this.checked(params)).changes) }
  }

  private checked(params: Params): Params {
    for (const name of this.names) {
      if (params[name] === undefined) throw new Error(`SQL parameter $${name} is missing in: ${this.statement.sourceSQL}`)
    }
    return params
  }
}

export class SqliteDatabase {
  private readonly db: DatabaseSync
  private readonly statements = new Map<string, Statement>()

  constructor(path: string) {
    this.db = new DatabaseSync(path)
  }

  exec(sql: string): void {
    this.db.exec(sql)
  }

  /** The statement for `sql`, prepared on first use. */
  query(sql: string): Statement {
    let statement = this.statements.get(sql)
    if (!statement) {
      statement = new Statement(this.db.prepare(sql), sql)
      this.statements.set(sql, statement)
    }
    return statement
  }

  /**
   * Runs `work` in a write transaction (BEGIN IMMEDIATE: the write lock is taken at once, so it cannot fail
   * half-way on a lock upgrade); commits its result, rolls back what it throws. Transactions do not nest.
   */
  transaction<T>(work: () => T): T {
    this.db.exec('BEGIN IMMEDIATE')
    try {
      const result = work()
      this.db.exec('COMMIT')
      return result
    } catch (error) {
      if (this.db.isTransaction) this.db.exec('ROLLBACK')
      throw error
    }
  }

  close(): void {
    this.statements.clear()
    this.db.close()
  }
}
