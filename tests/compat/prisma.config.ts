// Prisma 7 reads its settings from this file (a Prisma 7 schema carries no
// connection URL). The suite only runs `prisma generate`; the client gets its
// database through @prisma/adapter-pg at run time.
//
// The schema is tests/fixtures/schema.prisma. run.sh copies it to
// generated/schema.prisma first: the `prisma-client-js` generator looks for
// @prisma/client from the schema file's folder, and the suite's node_modules
// is here, not under tests/fixtures/.
import path from 'node:path';
import { defineConfig } from 'prisma/config';

export default defineConfig({
  schema: path.join(import.meta.dirname, 'generated', 'schema.prisma'),
  ...(process.env.DATABASE_URL ? { datasource: { url: process.env.DATABASE_URL } } : {}),
});
