import type { SqliteDatabase } from './sqlite-database.ts'

/**
 * The local Loop's SQLite schema and its migrations. A new database gets the current schema; an older one is
 * migrated in place, so data folders written by earlier versions keep working.
 *
 * Version 2: images get ids assigned by the Loop (UUIDs) instead of the uploader's file name, which is kept in
 * `file_name` (with `content_sha256` it recognises an outbox retry); trainings record how they ended.
 * Version 3: images keep the uploader's `camera_id`; indexes for the web page's gallery (newest first, by source, camera and created day).
 */
export const SCHEMA_VERSION = 3

const SCHEMA = `
CREATE TABLE IF NOT EXISTS organizations (
  id TEXT PRIMARY KEY,
  created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS projects (
  organization TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
  project TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (organization, project)
);
CREATE TABLE IF NOT EXISTS categories (
  id TEXT PRIMARY KEY,
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  position INTEGER NOT NULL,
  body TEXT NOT NULL,
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS images (
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  id TEXT NOT NULL,
  state TEXT NOT NULL,
  set_name TEXT NOT NULL,
  width INTEGER NOT NULL,
  height INTEGER NOT NULL,
  created TEXT NOT NULL,
  uploaded_at INTEGER NOT NULL,
  source TEXT,
  tags TEXT NOT NULL,
  annotations TEXT NOT NULL,
  detections TEXT NOT NULL,
  trainer_detections TEXT,
  file TEXT NOT NULL,
  file_name TEXT,
  content_sha256 TEXT,
  camera_id TEXT,
  PRIMARY KEY (organization, project, id),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS images_by_state ON images (organization, project, state, uploaded_at);
CREATE INDEX IF NOT EXISTS images_by_file_name ON images (organization, project, file_name);
CREATE INDEX IF NOT EXISTS images_by_upload_time ON images (organization, project, uploaded_at, id);
CREATE INDEX IF NOT EXISTS images_by_source ON images (organization, project, source);
CREATE INDEX IF NOT EXISTS images_by_camera ON images (organization, project, camera_id);
CREATE INDEX IF NOT EXISTS images_by_created ON images (organization, project, created);
CREATE TABLE IF NOT EXISTS trainings (
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  number INTEGER NOT NULL,
  id TEXT NOT NULL UNIQUE,
  created_at INTEGER NOT NULL,
  state TEXT NOT NULL,
  trainer_id TEXT,
  model_variant TEXT NOT NULL,
  hyperparameters TEXT NOT NULL,
  base_model_uuid TEXT,
  last_update TEXT,
  outcome TEXT,
  error TEXT,
  PRIMARY KEY (organization, project, number),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS models (
  id TEXT PRIMARY KEY,
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  training_number INTEGER NOT NULL,
  version TEXT NOT NULL,
  created TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  comment TEXT,
  UNIQUE (organization, project, version),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS model_formats (
  model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  format TEXT NOT NULL,
  folder TEXT NOT NULL,
  files TEXT NOT NULL,
  model_json TEXT,
  created_at INTEGER NOT NULL,
  PRIMARY KEY (model_id, format)
);
CREATE TABLE IF NOT EXISTS deployment_targets (
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  model_id TEXT NOT NULL REFERENCES models(id) ON DELETE CASCADE,
  PRIMARY KEY (organization, project),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS detector_statuses (
  organization TEXT NOT NULL,
  project TEXT NOT NULL,
  uuid TEXT NOT NULL,
  body TEXT NOT NULL,
  received_at INTEGER NOT NULL,
  PRIMARY KEY (organization, project, uuid),
  FOREIGN KEY (organization, project) REFERENCES projects(organization, project) ON DELETE CASCADE
);
`

const MIGRATIONS: Record<number, string> = {
  // version 1 used the uploader's file stem as the image id; it stays the id of those images
  2: `
ALTER TABLE images ADD COLUMN file_name TEXT;
ALTER TABLE images ADD COLUMN content_sha256 TEXT;
UPDATE images SET file_name = 'image_' || id || '.jpg' WHERE source IS NOT 'generator';
CREATE INDEX IF NOT EXISTS images_by_file_name ON images (organization, project, file_name);
ALTER TABLE trainings ADD COLUMN outcome TEXT;
ALTER TABLE trainings ADD COLUMN error TEXT;
`,
  3: `
ALTER TABLE images ADD COLUMN camera_id TEXT;
CREATE INDEX IF NOT EXISTS images_by_upload_time ON images (organization, project, uploaded_at, id);
CREATE INDEX IF NOT EXISTS images_by_source ON images (organization, project, source);
CREATE INDEX IF NOT EXISTS images_by_camera ON images (organization, project, camera_id);
CREATE INDEX IF NOT EXISTS images_by_created ON images (organization, project, created);
`,
}

/** Creates or migrates the schema of `db` (at `path`, for messages) to SCHEMA_VERSION. */
export function prepareSchema(db: SqliteDatabase, path: string): void {
  const version = Number(db.query('PRAGMA user_version').get()?.user_version)
  if (version > SCHEMA_VERSION) throw new Error(`${path} has schema version ${version}, newer than this program's ${SCHEMA_VERSION}`)
  db.transaction(() => {
    if (version === 0) {
      db.exec(SCHEMA)
    } else {
      for (let next = version + 1; next <= SCHEMA_VERSION; next++) db.exec(MIGRATIONS[next]!)
    }
    db.exec(`PRAGMA user_version = ${SCHEMA_VERSION}`)
  })
}
