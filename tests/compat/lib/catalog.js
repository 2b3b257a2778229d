// Reads of the Postgres catalogs, compared with what Prisma's schema implies.
// Each check returns a list of problems (empty = as Prisma makes it), one
// readable line per fact, so a failure names every difference at once.

import { isHubName } from './schema.js';

/** Indexes of `tables`: [{table, name, method, unique, columns}] */
export async function indexes(db, tables) {
  const { rows } = await db.query(
    `SELECT t.relname AS table, i.relname AS name, am.amname AS method, ix.indisunique AS unique,
            ARRAY(SELECT pg_get_indexdef(ix.indexrelid, k, true) FROM generate_series(1, ix.indnatts) k ORDER BY k) AS columns
       FROM pg_index ix
       JOIN pg_class i ON i.oid = ix.indexrelid
       JOIN pg_class t ON t.oid = ix.indrelid
       JOIN pg_am am ON am.oid = i.relam
       JOIN pg_namespace n ON n.oid = t.relnamespace
      WHERE n.nspname = current_schema() AND t.relname = ANY($1)`,
    [tables],
  );
  return rows.map((r) => ({ ...r, columns: r.columns.map((c) => c.replace(/^"(.*)"$/, '$1')) }));
}

/** Every index Prisma's schema names exists with its columns and uniqueness, as btree. */
export async function prismaIndexProblems(db, expected) {
  const have = await indexes(db, [...expected.keys()]);
  const byName = new Map(have.map((i) => [i.name, i]));
  const problems = [];
  for (const [table, t] of expected) {
    for (const want of t.indexes) {
      const got = byName.get(want.name);
      if (!got) {
        problems.push(`${table}: index "${want.name}" on (${want.columns.join(', ')}) is missing`);
        continue;
      }
      if (got.method !== 'btree') {
        problems.push(`${table}: index "${want.name}" is ${got.method.toUpperCase()}; Prisma's migrations make it btree (a hub GIN index must be its own, named hub_…)`);
      }
      if (got.table !== table || got.columns.join(',') !== want.columns.join(',')) {
        problems.push(`${table}: index "${want.name}" is on ${got.table}(${got.columns.join(', ')}); Prisma makes it on ${table}(${want.columns.join(', ')})`);
      }
      if (got.unique !== want.unique) {
        problems.push(`${table}: index "${want.name}" is ${got.unique ? '' : 'not '}unique; Prisma makes it ${want.unique ? '' : 'not '}unique`);
      }
    }
  }
  return problems;
}

/** Indexes on Prisma's tables that Prisma does not make must be the hub's own. */
export async function foreignIndexProblems(db, expected) {
  const prismaNames = new Set([...expected.values()].flatMap((t) => t.indexes.map((i) => i.name)));
  const have = await indexes(db, [...expected.keys()]);
  const problems = [];
  for (const i of have) {
    if (prismaNames.has(i.name)) continue;
    if (i.method === 'gin' && !/^hub_/.test(i.name)) {
      problems.push(`${i.table}: GIN index "${i.name}" on (${i.columns.join(', ')}) is not named hub_…`);
    } else if (!isHubName(i.name)) {
      problems.push(`${i.table}: index "${i.name}" (${i.method}, ${i.columns.join(', ')}) is neither Prisma's nor named as the hub's (hub_… / …_hub_…)`);
    }
  }
  return problems;
}

/** Columns of `tables`: Map(table → Map(column → {type, nullable, default})). */
export async function columns(db, tables) {
  const { rows } = await db.query(
    `SELECT c.relname AS table, a.attname AS column, format_type(a.atttypid, a.atttypmod) AS type,
            NOT a.attnotnull AS nullable, pg_get_expr(d.adbin, d.adrelid) AS default,
            ic.column_default AS info_default
       FROM pg_attribute a
       JOIN pg_class c ON c.oid = a.attrelid
       JOIN pg_namespace n ON n.oid = c.relnamespace
       LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
       LEFT JOIN information_schema.columns ic
              ON ic.table_schema = n.nspname AND ic.table_name = c.relname AND ic.column_name = a.attname
      WHERE n.nspname = current_schema() AND c.relkind = 'r' AND a.attnum > 0 AND NOT a.attisdropped
        AND c.relname = ANY($1)`,
    [tables],
  );
  const out = new Map();
  for (const r of rows) {
    if (!out.has(r.table)) out.set(r.table, new Map());
    out.get(r.table).set(r.column, { type: r.type, nullable: r.nullable, default: r.info_default ?? r.default ?? null });
  }
  return out;
}

/**
 * Every column of Prisma's tables has the type, nullability and default that
 * Prisma's schema implies; no default Prisma does not set; the hub's own
 * columns are nullable hub… columns.
 */
export async function columnProblems(db, expected) {
  const have = await columns(db, [...expected.keys()]);
  const problems = [];
  for (const [table, t] of expected) {
    const cols = have.get(table);
    if (!cols) {
      problems.push(`table "${table}" is missing`);
      continue;
    }
    for (const [name, want] of t.columns) {
      const got = cols.get(name);
      if (!got) {
        problems.push(`${table}.${name}: column is missing`);
        continue;
      }
      if (got.type !== want.type) problems.push(`${table}.${name}: type is ${got.type}; Prisma makes ${want.type}`);
      if (got.nullable !== want.nullable) {
        problems.push(`${table}.${name}: is ${got.nullable ? 'nullable' : 'NOT NULL'}; Prisma makes it ${want.nullable ? 'nullable' : 'NOT NULL'}`);
      }
      if ((got.default ?? null) !== want.default) {
        problems.push(want.default === null
          ? `${table}.${name}: has DEFAULT ${got.default}; Prisma's schema sets no default there${/updatedAt|lastUpdated/.test(name) ? ' (@updatedAt: the client sets it)' : ''}`
          : `${table}.${name}: default is ${got.default ?? '(none)'}; Prisma makes DEFAULT ${want.default}`);
      }
    }
    for (const [name, got] of cols) {
      if (t.columns.has(name)) continue;
      if (!isHubName(name)) problems.push(`${table}.${name}: a column Prisma's schema does not have, not named hub…`);
      else if (!got.nullable) problems.push(`${table}.${name}: the hub's column is NOT NULL; the old app cannot write rows without it`);
    }
  }
  return problems;
}

/** How Prisma's schema engine lays out `_prisma_migrations` on PostgreSQL. */
const MIGRATIONS_COLUMNS = {
  id: { type: 'character varying(36)', nullable: false },
  checksum: { type: 'character varying(64)', nullable: false },
  finished_at: { type: 'timestamp with time zone', nullable: true },
  migration_name: { type: 'character varying(255)', nullable: false },
  logs: { type: 'text', nullable: true },
  rolled_back_at: { type: 'timestamp with time zone', nullable: true },
  started_at: { type: 'timestamp with time zone', nullable: false },
  applied_steps_count: { type: 'integer', nullable: false },
};

/**
 * `_prisma_migrations` holds exactly the old app's migrations, each applied
 * and finished, none failed: what `prisma migrate deploy` needs to answer
 * "No pending migrations" instead of P3005 (non-empty schema, no history) or
 * P3009 (a failed migration).
 */
export async function prismaMigrationProblems(db, migrations) {
  const cols = (await columns(db, ['_prisma_migrations'])).get('_prisma_migrations');
  if (!cols) {
    return ['there is no "_prisma_migrations" table: `prisma migrate deploy` refuses a non-empty database without it (P3005)'];
  }
  const problems = [];
  for (const [name, want] of Object.entries(MIGRATIONS_COLUMNS)) {
    const got = cols.get(name);
    if (!got) problems.push(`_prisma_migrations.${name}: column is missing (Prisma reads it)`);
    else if (got.type !== want.type || got.nullable !== want.nullable) {
      problems.push(`_prisma_migrations.${name}: ${got.type}${got.nullable ? '' : ' NOT NULL'}; Prisma makes ${want.type}${want.nullable ? '' : ' NOT NULL'}`);
    }
  }
  if (problems.length) return problems;
  const { rows } = await db.query(
    `SELECT migration_name, checksum, finished_at, rolled_back_at, logs, applied_steps_count, started_at
       FROM "_prisma_migrations" ORDER BY started_at, migration_name`,
  );
  for (const r of rows) {
    if (r.finished_at === null && r.rolled_back_at === null) {
      problems.push(`migration ${r.migration_name} is recorded as failed (finished_at NULL, not rolled back): migrate deploy stops with P3009`);
    }
  }
  const live = rows.filter((r) => r.rolled_back_at === null);
  for (const m of migrations) {
    const found = live.filter((r) => r.migration_name === m.name);
    if (found.length === 0) {
      problems.push(`migration ${m.name} is not recorded: migrate deploy would try to apply it on existing tables`);
      continue;
    }
    if (found.length > 1) problems.push(`migration ${m.name} is recorded ${found.length} times`);
    const r = found[0];
    if (r.checksum !== m.checksum) problems.push(`migration ${m.name}: checksum ${r.checksum}; its migration.sql hashes to ${m.checksum}`);
    if (r.finished_at === null) problems.push(`migration ${m.name}: finished_at is NULL`);
    else if (r.finished_at < r.started_at) problems.push(`migration ${m.name}: finished before it started`);
    if (r.logs !== null) problems.push(`migration ${m.name}: logs is ${JSON.stringify(r.logs)}; a clean apply leaves NULL`);
    if (r.applied_steps_count !== 1) problems.push(`migration ${m.name}: applied_steps_count ${r.applied_steps_count}; Prisma records 1`);
  }
  const known = new Set(migrations.map((m) => m.name));
  for (const r of live) {
    if (!known.has(r.migration_name)) problems.push(`_prisma_migrations has a row for ${r.migration_name}, which is not one of the old app's migrations`);
  }
  return problems;
}
