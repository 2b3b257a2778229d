// The common stage of scenarios b–h: a database as the old app's
// `prisma migrate deploy` leaves it, a hub that adopted it, and the real
// Prisma client plus a plain pg connection on the same database.

import { connect, createPrismaDatabase, prismaFor } from './db.js';
import { Hub } from './hub.js';

export async function sharedDatabase(label) {
  const url = await createPrismaDatabase(`compat_${label.replace(/\W/g, '_')}`);
  const hub = await Hub.start(label, url);
  const prisma = prismaFor(url);
  const db = await connect(url);
  return {
    url, hub, prisma, db,
    async close() {
      await prisma.$disconnect().catch(() => {});
      await db.end().catch(() => {});
      await hub.stop();
    },
  };
}
