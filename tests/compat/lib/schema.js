// What tests/fixtures/schema.prisma implies for the database, read from the
// schema file itself with Prisma's mapping conventions for PostgreSQL:
// tables, column types/nullability/defaults, and index names and columns.

import fs from 'node:fs';
import path from 'node:path';
import { ROOT } from './db.js';

const SCALARS = {
  String: 'text',
  Int: 'integer',
  Float: 'double precision',
  Boolean: 'boolean',
  DateTime: 'timestamp(3) without time zone',
  Json: 'jsonb',
};

/** The database default Prisma's migrations give a field, or null for none. */
function columnDefault(field) {
  const d = field.attrs.match(/@default\((.*)\)/);
  if (!d) return null; // @updatedAt and plain fields: the client sets them
  const v = d[1].trim();
  if (v === 'now()') return 'CURRENT_TIMESTAMP';
  if (v === 'uuid()' || v === 'cuid()') return null; // made by the client
  if (v === '[]') return `ARRAY[]::${SCALARS[field.type]}[]`;
  return v; // literals: true, 0, ...
}

export function loadPrismaSchema(file = path.join(ROOT, 'tests', 'fixtures', 'schema.prisma')) {
  const text = fs.readFileSync(file, 'utf8').replace(/\/\/.*$/gm, '');
  const models = new Map();
  for (const m of text.matchAll(/model\s+(\w+)\s*\{([^}]*)\}/g)) {
    models.set(m[1], m[2]);
  }
  const tables = new Map(); // name → {columns: Map(name → {type, nullable, default}), indexes: [...]}
  const relationPairs = new Set();
  for (const [model, body] of models) {
    const columns = new Map();
    const indexes = [{ name: `${model}_pkey`, columns: ['id'], unique: true }];
    for (const line of body.split('\n').map((l) => l.trim()).filter(Boolean)) {
      if (line.startsWith('@@')) {
        const m = line.match(/^@@(index|unique)\(\[([^\]]*)\]/);
        if (!m) continue;
        const cols = m[2].split(',').map((s) => s.trim());
        indexes.push({
          name: `${model}_${cols.join('_')}_${m[1] === 'unique' ? 'key' : 'idx'}`,
          columns: cols,
          unique: m[1] === 'unique',
        });
        continue;
      }
      const f = line.match(/^(\w+)\s+(\w+)(\[\])?(\?)?\s*(.*)$/);
      if (!f) continue;
      const [, name, type, list, optional, attrs] = f;
      if (models.has(type)) {
        // A relation field. A list on both sides without @relation(fields)
        // is an implicit many-to-many: Prisma names its table after the two
        // models in alphabetical order.
        if (list && !attrs.includes('fields:')) {
          const other = models.get(type);
          if (new RegExp(`\\s${model}\\[\\]`).test(other)) relationPairs.add([model, type].sort().join('|'));
        }
        continue;
      }
      if (!SCALARS[type]) throw new Error(`schema.prisma: unknown type ${type} of ${model}.${name}`);
      const field = { name, type, list: !!list, optional: !!optional, attrs };
      columns.set(name, {
        type: SCALARS[type] + (list ? '[]' : ''),
        // Prisma makes list columns nullable on PostgreSQL.
        nullable: !!optional || !!list,
        default: columnDefault(field),
      });
      if (/@unique\b/.test(attrs)) indexes.push({ name: `${model}_${name}_key`, columns: [name], unique: true });
    }
    tables.set(model, { columns, indexes });
  }
  for (const pair of relationPairs) {
    const [a, b] = pair.split('|');
    const table = `_${a}To${b}`;
    tables.set(table, {
      columns: new Map([
        ['A', { type: 'text', nullable: false, default: null }],
        ['B', { type: 'text', nullable: false, default: null }],
      ]),
      indexes: [
        { name: `${table}_AB_unique`, columns: ['A', 'B'], unique: true },
        { name: `${table}_B_index`, columns: ['B'], unique: false },
      ],
    });
  }
  return tables;
}

/** Is this the name of something the hub added (its own namespace)? */
export function isHubName(name) {
  return /^hub/i.test(name) || /_hub_/i.test(name);
}
