// b. Accounts both ways: the old app's users (bcrypt `$2b$10$` hashes) sign
//    in to the hub, and users the hub registers sign in to the old app.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { sharedDatabase } from '../lib/setup.js';
import { uid } from '../lib/hub.js';
import * as oldApp from '../lib/oldapp.js';

describe('b. accounts work in both apps', () => {
  let s;
  before(async () => { s = await sharedDatabase('b-accounts'); });
  after(async () => { await s?.close(); });

  it('a user the old app created (bcrypt cost 10) signs in to the hub with the same password', async () => {
    const email = `${uid('old-')}@example.com`;
    const password = 'old app password 1';
    const user = await oldApp.createUser(s.prisma, { email, name: 'Old Olga', password });
    assert.match(user.password, /^\$2b\$10\$/, 'the old app stores a $2b$10$ bcrypt hash');

    const res = await s.hub.api('POST', '/auth/token', undefined, { email, password });
    assert.equal(res.status, 200,
      `POST /v1/auth/token with the old app's user's password should answer 200 with a token; got ${res.status} ${JSON.stringify(res.data)}`);
    assert.equal(res.data.user.id, user.id, 'the token is for the old app\'s user');
    const me = await s.hub.api('GET', '/me', res.data.token);
    assert.equal(me.status, 200, `the token works (GET /v1/me answered ${me.status})`);
    assert.equal(me.data.user.id, user.id);

    const wrong = await s.hub.api('POST', '/auth/token', undefined, { email, password: 'not the password' });
    assert.equal(wrong.status, 401, `a wrong password is still refused (got ${wrong.status})`);
  });

  it('a user the hub registered signs in to the old app (bcrypt.compare on User.password)', async () => {
    const hubUser = await s.hub.register('Hub Hanna');
    const row = await s.prisma.user.findUnique({ where: { id: hubUser.id } });
    assert.ok(row, 'the hub\'s user is a User row Prisma reads');
    assert.ok(row.password, 'the hub stores a password hash in User.password');
    const ok = await oldApp.validateCredentials(s.prisma, hubUser.email, hubUser.password);
    assert.equal(ok, hubUser.id,
      `the old app's sign-in (bcrypt.compare) should accept the hub user's password; User.password starts ${JSON.stringify(row.password.slice(0, 10))}, which bcrypt cannot check`);
    assert.equal(await oldApp.validateCredentials(s.prisma, hubUser.email, 'wrong password'), null,
      'and refuse a wrong one');
  });

  it('a Spotify-only user of the old app (no password) cannot sign in to the hub with any password', async () => {
    const email = `${uid('spotify-')}@example.com`;
    await oldApp.createUserWithPreferences(s.prisma, { email, name: 'Spotify Sam', spotifyId: uid('sp') });
    const res = await s.hub.api('POST', '/auth/token', undefined, { email, password: 'anything at all' });
    assert.equal(res.status, 401, `expected 401 for an account without a password; got ${res.status} ${JSON.stringify(res.data)}`);
  });
});
