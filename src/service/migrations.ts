/**
 * Versioned schema migrations, the same for SQLite and PostgreSQL. The DDL
 * is written once; two tokens stand for what the dialects spell differently:
 * `{ID}` an auto-incrementing integer primary key, `{BLOB}` a byte string.
 * A migration, once released, never changes: a new version is appended.
 */
import { CoapfwError } from '../errors.js';
import type { Dialect, Sql } from './sql.js';

/** One schema version. */
export interface Migration {
  readonly version: number;
  readonly name: string;
  readonly statements: readonly string[];
}

const OPEN_COMMANDS = "('pending','scheduled','triggered')";

/** Every migration, in order. */
export const MIGRATIONS: readonly Migration[] = [
  {
    version: 1,
    name: 'devices, releases, history, commands, rollouts, trust documents',
    statements: [
      `CREATE TABLE devices (
        id TEXT PRIMARY KEY,
        vendor_id TEXT NOT NULL,
        class_id TEXT NOT NULL,
        installed_seq BIGINT NOT NULL,
        running_digest TEXT,
        mode TEXT NOT NULL CHECK (mode IN ('client','server','negotiated')),
        group_name TEXT,
        state TEXT NOT NULL,
        target_seq BIGINT,
        progress_done BIGINT,
        progress_total BIGINT,
        detail TEXT,
        report_seq BIGINT NOT NULL DEFAULT 0,
        identity TEXT UNIQUE,
        registered_at BIGINT NOT NULL,
        last_seen BIGINT NOT NULL
      )`,
      'CREATE INDEX devices_class_state ON devices (class_id, state)',
      'CREATE INDEX devices_group ON devices (group_name)',
      `CREATE TABLE status_history (
        id {ID},
        device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        at BIGINT NOT NULL,
        transition TEXT NOT NULL,
        from_state TEXT,
        sequence BIGINT,
        report_seq BIGINT,
        progress_done BIGINT,
        progress_total BIGINT,
        detail TEXT
      )`,
      'CREATE INDEX status_history_device ON status_history (device_id, id)',
      // NULL report_seq (registrations) are distinct in both dialects.
      'CREATE UNIQUE INDEX status_history_report ON status_history (device_id, report_seq)',
      `CREATE TABLE blobs (
        sha256 TEXT PRIMARY KEY,
        size BIGINT NOT NULL,
        created_at BIGINT NOT NULL
      )`,
      // Bytes in fixed-size chunks, so that serving one block reads one small row rather than
      // the whole image (SQLite's substr on a BLOB loads all of it).
      `CREATE TABLE blob_chunks (
        sha256 TEXT NOT NULL REFERENCES blobs (sha256) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        data {BLOB} NOT NULL,
        PRIMARY KEY (sha256, idx)
      )`,
      `CREATE TABLE releases (
        class_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        vendor_id TEXT NOT NULL,
        urgency TEXT NOT NULL CHECK (urgency IN ('critical','normal','configuration')),
        envelope_sha256 TEXT NOT NULL REFERENCES blobs (sha256),
        envelope_size BIGINT NOT NULL,
        downtime_s BIGINT,
        published_at BIGINT NOT NULL,
        publisher TEXT NOT NULL,
        PRIMARY KEY (class_id, sequence)
      )`,
      'CREATE INDEX releases_published ON releases (published_at)',
      `CREATE TABLE release_images (
        class_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        component INTEGER NOT NULL,
        sha256 TEXT NOT NULL REFERENCES blobs (sha256),
        size BIGINT NOT NULL,
        PRIMARY KEY (class_id, sequence, component),
        FOREIGN KEY (class_id, sequence) REFERENCES releases (class_id, sequence) ON DELETE CASCADE
      )`,
      `CREATE TABLE rollouts (
        id {ID},
        class_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        group_name TEXT,
        state TEXT NOT NULL CHECK (state IN ('running','paused','completed','aborted')),
        current_wave INTEGER NOT NULL DEFAULT 0,
        pause_reason TEXT,
        created_by TEXT NOT NULL,
        created_at BIGINT NOT NULL,
        updated_at BIGINT NOT NULL,
        FOREIGN KEY (class_id, sequence) REFERENCES releases (class_id, sequence)
      )`,
      // One active rollout per class and group ('' stands for the whole class).
      "CREATE UNIQUE INDEX rollouts_active ON rollouts (class_id, COALESCE(group_name, '')) WHERE state IN ('running','paused')",
      `CREATE TABLE rollout_waves (
        rollout_id BIGINT NOT NULL REFERENCES rollouts (id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,
        size_count BIGINT,
        size_percent INTEGER,
        success_permille INTEGER NOT NULL,
        failure_permille INTEGER NOT NULL,
        time_limit_s BIGINT NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending','running','succeeded','failed')),
        started_at BIGINT,
        finished_at BIGINT,
        PRIMARY KEY (rollout_id, idx),
        CHECK ((size_count IS NULL) <> (size_percent IS NULL))
      )`,
      `CREATE TABLE rollout_targets (
        rollout_id BIGINT NOT NULL,
        device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        wave INTEGER NOT NULL,
        state TEXT NOT NULL CHECK (state IN ('pending','notified','updating','confirmed','failed','reverted')),
        updated_at BIGINT NOT NULL,
        confirmed_at BIGINT,
        PRIMARY KEY (rollout_id, device_id),
        FOREIGN KEY (rollout_id, wave) REFERENCES rollout_waves (rollout_id, idx) ON DELETE CASCADE
      )`,
      'CREATE INDEX rollout_targets_device ON rollout_targets (device_id)',
      `CREATE TABLE device_commands (
        id {ID},
        device_id TEXT NOT NULL REFERENCES devices (id) ON DELETE CASCADE,
        class_id TEXT NOT NULL,
        sequence BIGINT NOT NULL,
        kind TEXT NOT NULL CHECK (kind IN ('update','announce')),
        state TEXT NOT NULL CHECK (state IN ('pending','scheduled','triggered','done','failed','cancelled','superseded')),
        created_at BIGINT NOT NULL,
        not_before BIGINT,
        answered_at BIGINT,
        defer_s BIGINT,
        finished_at BIGINT,
        detail TEXT,
        rollout_id BIGINT REFERENCES rollouts (id),
        FOREIGN KEY (class_id, sequence) REFERENCES releases (class_id, sequence)
      )`,
      `CREATE UNIQUE INDEX device_commands_open ON device_commands (device_id) WHERE state IN ${OPEN_COMMANDS}`,
      'CREATE INDEX device_commands_due ON device_commands (state, not_before)',
      `CREATE TABLE trust_documents (
        kind TEXT NOT NULL CHECK (kind IN ('rotation','revocation','transfer')),
        scope TEXT NOT NULL,
        version BIGINT NOT NULL,
        sha256 TEXT NOT NULL REFERENCES blobs (sha256),
        size BIGINT NOT NULL,
        published_at BIGINT NOT NULL,
        publisher TEXT NOT NULL,
        PRIMARY KEY (kind, scope, version)
      )`,
    ],
  },
];

/** The schema version this code writes and reads. */
export const SCHEMA_VERSION = MIGRATIONS[MIGRATIONS.length - 1]!.version;

const TOKENS: Record<Dialect, Record<string, string>> = {
  sqlite: { '{ID}': 'INTEGER PRIMARY KEY', '{BLOB}': 'BLOB' },
  postgres: { '{ID}': 'BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY', '{BLOB}': 'BYTEA' },
};

/** A migration statement in a dialect's spelling. */
export function dialectSql(statement: string, dialect: Dialect): string {
  return statement.replace(/\{ID\}|\{BLOB\}/g, (t) => TOKENS[dialect][t]!);
}

/**
 * Apply the migrations the database lacks, inside `tx` (a transaction the
 * caller holds the schema lock for). Returns the resulting version. Throws
 * DB_SCHEMA for a database written by a newer coapfw, or one whose recorded
 * migration names differ from ours (a different schema under the same numbers).
 */
export async function migrate(tx: Sql, dialect: Dialect, now: number, migrations: readonly Migration[] = MIGRATIONS): Promise<number> {
  await tx.run('CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)');
  const applied = await tx.all<{ version: unknown; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
  const known = new Map(migrations.map((m) => [m.version, m]));
  for (const row of applied) {
    const version = Number(row.version);
    const ours = known.get(version);
    if (ours === undefined) {
      throw new CoapfwError('DB_SCHEMA', `store: the database has schema version ${version}, newer than this coapfw knows (${migrations.length}); upgrade coapfw`);
    }
    if (ours.name !== row.name) {
      throw new CoapfwError('DB_SCHEMA', `store: schema version ${version} of the database is '${row.name}', expected '${ours.name}'`);
    }
  }
  const done = new Set(applied.map((r) => Number(r.version)));
  let version = applied.length === 0 ? 0 : Number(applied[applied.length - 1]!.version);
  for (const m of migrations) {
    if (done.has(m.version)) continue;
    for (const statement of m.statements) await tx.run(dialectSql(statement, dialect));
    await tx.run('INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)', [m.version, m.name, now]);
    version = m.version;
  }
  return version;
}
