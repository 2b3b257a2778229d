// Databases in the suite's throwaway cluster (started by run.sh), the real
// Prisma client on them (through @prisma/adapter-pg: no engine binary), and a
// plain `pg` connection for catalog reads that Prisma's API has no words for.

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import prismaClient from '@prisma/client';
import { PrismaPg } from '@prisma/adapter-pg';

const { PrismaClient } = prismaClient;

export const HERE = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const ROOT = path.resolve(HERE, '..', '..');

function socketDir() {
  const dir = process.env.COMPAT_PG_SOCKET;
  if (!dir) {
    throw new Error('COMPAT_PG_SOCKET is not set: run the suite with tests/compat/run.sh (it starts the throwaway Postgres)');
  }
  return dir;
}

/** URL of database `name` in the suite's cluster (Unix socket, trust auth). */
export function dbUrl(name) {
  return `postgres://audotics@localhost:5432/${name}?host=${encodeURIComponent(socketDir())}`;
}

/** A plain pg client on `url`, connected. */
export async function connect(url) {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  return client;
}

/** A fresh, empty database (dropped first if a previous run left it). */
export async function createDatabase(name) {
  const admin = await connect(dbUrl('postgres'));
  try {
    await admin.query(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`);
    await admin.query(`CREATE DATABASE "${name}"`);
  } finally {
    await admin.end();
  }
  return dbUrl(name);
}

/** The real Prisma client (generated from tests/fixtures/schema.prisma) on `url`. */
export function prismaFor(url) {
  return new PrismaClient({ adapter: new PrismaPg({ connectionString: url }) });
}

// ------------------------------------------------------------ a Prisma-made database

/**
 * The six migrations of the old app, as `prisma migrate deploy` records them
 * in `_prisma_migrations`: the folder name and the SHA-256 (hex) of that
 * folder's migration.sql, byte for byte as it is in the old app's repository
 * (computed from its public source; recorded here as data, not code).
 */
export const PRISMA_MIGRATIONS = [
  ['20241216100433_initial', '16abe1862e0784273977574e1074de78e5298bcf44dd038b5e4b74ff2ae8520a'],
  ['20250217194937_add_ml_models', '81a93f4c2fb74fc0c5e9be7c0973640778ea1c7d6ef61661f5d66fddeefa1b21'],
  ['20250217202614_update_ml_schema', '2f471c2ebc01828bb19eaf2998449f9efb943ffca76acbf4e53a86bd20936380'],
  ['20250218135259_add_playlist_update_tracking', '8e93ac04ae580ee7f28c5f6f525abfafadf5ba7b486ab5d3cb11adadf0f9b124'],
  ['20250303194437_add_spotify_auth_fields', '0cfc696087145fb21e35ff55e2ceb2196cccead571867f5a0f657bc71fbfad36'],
  ['20250303195032_mig1', 'd7d2a0b0c70ef4d4615e58b665f97e0a5122d640b6a130fb2e35fa565fe62fb1'],
].map(([name, checksum]) => ({ name, checksum }));

/**
 * `_prisma_migrations` as Prisma's schema engine creates it on PostgreSQL
 * (column names, types and defaults are what `migrate deploy` reads).
 */
export const PRISMA_MIGRATIONS_TABLE = `
CREATE TABLE IF NOT EXISTS "_prisma_migrations" (
    "id"                  VARCHAR(36) PRIMARY KEY NOT NULL,
    "checksum"            VARCHAR(64) NOT NULL,
    "finished_at"         TIMESTAMPTZ,
    "migration_name"      VARCHAR(255) NOT NULL,
    "logs"                TEXT,
    "rolled_back_at"      TIMESTAMPTZ,
    "started_at"          TIMESTAMPTZ NOT NULL DEFAULT now(),
    "applied_steps_count" INTEGER NOT NULL DEFAULT 0
)`;

/** Record the six migrations as applied, one row each, as Prisma does. */
export async function recordPrismaMigrations(client) {
  await client.query(PRISMA_MIGRATIONS_TABLE);
  for (const m of PRISMA_MIGRATIONS) {
    await client.query(
      `INSERT INTO "_prisma_migrations"
         ("id", "checksum", "finished_at", "migration_name", "logs", "rolled_back_at", "started_at", "applied_steps_count")
       VALUES (gen_random_uuid()::text, $1, now(), $2, NULL, NULL, now(), 1)`,
      [m.checksum, m.name],
    );
  }
}

/**
 * A database as the old app leaves it after `prisma migrate deploy`: the final
 * schema (tests/fixtures/prisma_baseline.sql, our own DDL of it) and the six
 * migrations recorded. The hub then adopts it.
 */
export async function createPrismaDatabase(name) {
  const url = await createDatabase(name);
  const client = await connect(url);
  try {
    const ddl = fs.readFileSync(path.join(ROOT, 'tests', 'fixtures', 'prisma_baseline.sql'), 'utf8');
    await client.query(ddl);
    await recordPrismaMigrations(client);
  } finally {
    await client.end();
  }
  return url;
}
