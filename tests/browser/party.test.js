// Browser tests of the party in the web client (issues 18 and 19): a host
// on a laptop (a demo account with tastes), a guest on a light-mode touch
// phone (390×844) who joins by code with just a name, and the big screen
// (1920×1080). A real hub (private Postgres, demo catalog) as in
// hub.test.js; screenshots land in artifacts/ (party-*.png are committed
// and shown in the README).
//
// Run: tests/browser/run.sh (after hub.test.js), or `node --test
// tests/browser/party.test.js` with HUB_BIN pointing at a built hub.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  UI_TIMEOUT, escapeRe, expectText, freePort, openTab, rawOps, sleep, smallTargets, titles, waitFor,
} from './helpers.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const HUB_BIN = process.env.HUB_BIN || path.join(ROOT, 'target', 'debug', 'audotics-hub');
const WEB_DIR = process.env.WEB_DIR || path.join(ROOT, 'web');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARTIFACTS = path.join(HERE, 'artifacts');
const STEP = { timeout: 90_000 };

const PHONE = { width: 390, height: 844 };
const LAPTOP = { width: 1280, height: 800 };
const TV = { width: 1920, height: 1080 };
/** The browsers reach the hub by a name that is not loopback, as phones on a network would (no warning on the invite). */
const PARTY_HOST = 'party.test';



async function startHub(dataDir, port) {
  const log = fs.openSync(path.join(ARTIFACTS, 'party-hub.log'), 'w');
  const proc = spawn(HUB_BIN, [
    'serve', '--bind', `127.0.0.1:${port}`, '--data-dir', dataDir, '--demo', '--web-dir', WEB_DIR,
  ], { stdio: ['ignore', log, log], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' } });
  fs.closeSync(log);
  const exited = new Promise((resolve) => proc.on('exit', resolve));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 120_000;
  while (Date.now() < deadline) {
    if (proc.exitCode !== null || proc.signalCode !== null) throw new Error('hub exited early; see artifacts/party-hub.log');
    try {
      const r = await fetch(`${base}/readyz`, { signal: AbortSignal.timeout(2000) });
      if (r.ok) return { proc, exited, base };
    } catch { /* not yet */ }
    await sleep(250);
  }
  throw new Error('hub did not become ready within 120 s');
}




/** A person's ⋯ menu in the member list, then one of its items. */
async function personAction(page, name, item) {
  await page.locator('#people-card').scrollIntoViewIfNeeded();
  await sleep(300); // the menu closes on scroll: let it settle first
  await page.getByRole('button', { name: `Actions for ${name}` }).click();
  await page.getByRole('menuitem', { name: item }).click();
}




async function shoot(page, name, viewport, { full = false } = {}) {
  await page.setViewportSize(viewport);
  await page.evaluate(() => {
    document.activeElement?.blur();
    const t = document.querySelector('#toast');
    if (t) t.hidden = true;
    window.scrollTo(0, 0);
  });
  await sleep(400);
  const file = path.join(ARTIFACTS, `party-${name}-${viewport.width}x${viewport.height}.png`);
  await page.screenshot({ path: file, fullPage: full });
  return file;
}

/** The position the page shows, and the hub's position for the same moment. */
async function positions(page, hub, sessionId, token, bar = '#np-bar') {
  const r = await fetch(`${hub.base}/v1/sessions/${sessionId}`, { headers: { Authorization: `Bearer ${token}` } });
  const snap = await r.json();
  const np = snap.party.nowPlaying;
  const shown = Number(await page.locator(bar).getAttribute('data-position-ms'));
  const hubPos = np.state === 'playing' ? np.positionMs + (Date.now() - Date.parse(np.at)) : np.positionMs;
  return { shown, hub: hubPos, np };
}

describe('the party in the web client', { timeout: 900_000 }, () => {
  let tmp;
  let hub;
  let web; // the hub as the browsers reach it
  let browser;
  let host;
  let guest;
  let tv;
  let hostToken;
  let sessionId;
  let code;
  const queued = []; // titles added, in order
  const errors = [];
  const watch = (who, page) => page.on('pageerror', (e) => errors.push(`${who}: ${e.message}`));

  before(async () => {
    assert.ok(fs.existsSync(HUB_BIN), `hub binary not found at ${HUB_BIN}`);
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audotics-party-'));
    hub = await startHub(path.join(tmp, 'data'), await freePort());
    web = hub.base.replace('127.0.0.1', PARTY_HOST);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 60_000,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
        '--disable-component-update', '--disable-sync', `--host-resolver-rules=MAP ${PARTY_HOST} 127.0.0.1`],
    });
    const hostCtx = await browser.newContext({ viewport: LAPTOP, colorScheme: 'dark' });
    const guestCtx = await browser.newContext({ viewport: PHONE, colorScheme: 'light', hasTouch: true, isMobile: true });
    const tvCtx = await browser.newContext({ viewport: TV, colorScheme: 'dark' });
    for (const ctx of [hostCtx, guestCtx, tvCtx]) ctx.setDefaultTimeout(UI_TIMEOUT);
    host = await hostCtx.newPage();
    guest = await guestCtx.newPage();
    tv = await tvCtx.newPage();
    watch('host', host);
    watch('guest', guest);
    watch('tv', tv);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    if (hub && hub.proc.exitCode === null) {
      hub.proc.kill('SIGTERM');
      await Promise.race([hub.exited, sleep(30_000)]);
      if (hub.proc.exitCode === null && hub.proc.signalCode === null) hub.proc.kill('SIGKILL');
    }
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('serves /tv/CODE and /j/CODE as the client page', STEP, async () => {
    for (const p of ['/tv/CDFGHJ', '/j/CDFGHJ']) {
      const r = await fetch(hub.base + p);
      assert.equal(r.status, 200, p);
      assert.match(r.headers.get('content-type'), /text\/html/, p);
    }
  });

  it('host (a demo account) creates a party; the invite shows the code and a QR of /j/CODE', STEP, async () => {
    await host.goto(`${web}/`);
    await host.locator('#signin-email').fill('demo-ana@audotics.test');
    await host.locator('#signin-password').fill('demo-party');
    await host.locator('#form-signin').getByRole('button', { name: 'Sign in' }).click();
    await host.getByLabel('Session name').fill('Rooftop party');
    await host.getByRole('button', { name: 'Create session' }).click();
    await expectText(host.locator('#conn-badge'), /^Live$/, 'host live');
    sessionId = host.url().match(/#\/s\/([0-9a-f-]+)/)[1];
    hostToken = await host.evaluate(() => localStorage.getItem('audotics.token'));
    const shown = await expectText(host.locator('#join-code'), /^[34679CDFGHJKMNPQRTVWXY]{3} [34679CDFGHJKMNPQRTVWXY]{3}$/, 'the join code, spaced');
    code = shown.replace(' ', '');
    assert.match(await host.locator('#qr').getAttribute('aria-label'), new RegExp(`/j/${code}$`), 'the QR is the /j/CODE link');
    assert.equal(await host.locator('#qr svg path').count(), 1, 'QR drawn');
    assert.equal(await host.locator('#tv-link').getAttribute('href'), `/tv/${code}`);
    // Nothing plays yet: the host is offered to start.
    await expectText(host.locator('#np-empty-text'), /Nothing is playing/, 'empty now playing');
    // Five tracks from the demo catalog, queued by the host.
    const r = await fetch(`${hub.base}/v1/tracks?q=night&limit=5`, { headers: { Authorization: `Bearer ${hostToken}` } });
    const { tracks } = await r.json();
    assert.equal(tracks.length, 5);
    const answers = await rawOps(host, sessionId, tracks.map((t) => ({ type: 'add', trackId: t.id })));
    assert.ok(answers.every((m) => m.type === 'ack'), JSON.stringify(answers));
    await waitFor(async () => (await titles(host)).length === 5, 'five tracks queued');
    queued.push(...(await titles(host)));
  });

  it('a visitor opens /j/CODE, joins as a guest with just a name, and appears in the host\'s member list', STEP, async () => {
    await guest.goto(`${web}/j/${code.toLowerCase()}`);
    await expectText(guest.locator('#join-title'), /^Rooftop party$/, 'the party by its code');
    await expectText(guest.locator('#join-kicker'), /invites you/, 'who invites');
    await shoot(guest, 'join', PHONE);
    await guest.getByLabel('Your name').fill('Gia');
    await guest.getByRole('button', { name: 'Join as a guest' }).click();
    await guest.waitForURL(/\/#\/s\/[0-9a-f-]+$/);
    await expectText(guest.locator('#conn-badge'), /^Live$/, 'guest live');
    assert.equal(new URL(guest.url()).pathname, '/', 'the session page, not /j/');
    await expectText(guest.locator('#role-badge'), /^Guest$/, 'guest badge');
    await expectText(host.locator('#people li.online'), /Gia/, 'the host sees Gia listening');
    const avatar = host.locator('#people li', { hasText: 'Gia' }).locator('.avatar');
    await expectText(avatar, /^G$/, 'an initials avatar');
    assert.ok(await guest.locator('#claim-open').isVisible(), 'a guest is offered to keep the account');
  });

  it('host plays; the guest phone sees now playing, and its progress advances and matches the hub', STEP, async () => {
    await host.locator('#np-play').click();
    await expectText(guest.locator('#np-title'), new RegExp(`^${escapeRe(queued[0])}$`), 'guest sees what plays');
    await expectText(guest.locator('#np-label'), /Now playing/, 'playing');
    assert.deepEqual(await titles(guest), queued.slice(1), 'the playing track left the queue');
    assert.equal(await guest.locator('#np-play').isVisible(), false, 'no play control for a guest');
    const a = await positions(guest, hub, sessionId, hostToken);
    await sleep(2000);
    const b = await positions(guest, hub, sessionId, hostToken);
    assert.ok(b.shown - a.shown > 1500 && b.shown - a.shown < 2600, `advances ~2 s: ${a.shown} → ${b.shown}`);
    assert.ok(Math.abs(b.shown - b.hub) < 800, `matches the hub within 0.8 s: shown ${b.shown}, hub ${b.hub}`);
    // The host seeks to 1:00; the guest follows.
    await host.locator('#np-seek').fill('60000');
    await waitFor(async () => {
      const p = await positions(guest, hub, sessionId, hostToken);
      return p.shown > 59_000 && p.shown < 63_000 && Math.abs(p.shown - p.hub) < 800;
    }, 'guest at about 1:00 after the seek');
    await expectText(guest.locator('#np-elapsed'), /^1:0\d$/, 'elapsed time in words');
    // Paused: it stops advancing.
    await host.locator('#np-play').click();
    await expectText(guest.locator('#np-label'), /Paused/, 'paused');
    const p1 = Number(await guest.locator('#np-bar').getAttribute('data-position-ms'));
    await sleep(1000);
    const p2 = Number(await guest.locator('#np-bar').getAttribute('data-position-ms'));
    assert.equal(p1, p2, 'no progress while paused');
    await host.locator('#np-play').click();
    await expectText(guest.locator('#np-label'), /Now playing/, 'playing again');
  });

  it('a phone whose clock is 5 minutes fast still shows the hub\'s position (the offset comes from pongs)', STEP, async () => {
    const ctx = await browser.newContext({ viewport: PHONE, colorScheme: 'dark', hasTouch: true, isMobile: true });
    await ctx.addInitScript(() => {
      const real = Date.now.bind(Date);
      Date.now = () => real() + 5 * 60_000;
    });
    const fast = await ctx.newPage();
    watch('fast clock', fast);
    await fast.goto(`${web}/j/${code}`);
    await fast.getByLabel('Your name').fill('Sky');
    await fast.getByRole('button', { name: 'Join as a guest' }).click();
    await fast.waitForURL(/\/#\/s\/[0-9a-f-]+$/);
    await expectText(fast.locator('#np-label'), /Now playing/, 'playing');
    const offset = await waitFor(() => fast.evaluate(() => window.audotics.clockOffset), 'a clock offset from the hub');
    assert.ok(Math.abs(offset + 300_000) < 1000, `offset about −5 min: ${offset}`);
    await waitFor(async () => {
      const p = await positions(fast, hub, sessionId, hostToken);
      return Math.abs(p.shown - p.hub) < 800;
    }, 'the fast phone shows the hub\'s position');
    await ctx.close();
    await waitFor(async () => (await host.locator('#people li.online').count()) === 2, 'Sky left');
  });

  it('in votes order the guest\'s vote moves a track up, and taking it back is a toggle', STEP, async () => {
    await host.getByRole('button', { name: 'By votes' }).click();
    await expectText(guest.locator('#queue-help'), /Most votes play first/, 'guest is told how the order works');
    const last = queued[4];
    const vote = guest.getByRole('button', { name: new RegExp(`^Vote up ${escapeRe(last)}, 0 votes$`) });
    await vote.click();
    await waitFor(async () => (await titles(guest))[0] === last, 'the voted track first on the guest');
    await waitFor(async () => (await titles(host))[0] === last, 'and on the host');
    const pressed = guest.locator('#queue li.entry').first().locator('button.vote');
    assert.equal(await pressed.getAttribute('aria-pressed'), 'true');
    await expectText(pressed.locator('.vote-count'), /^1$/, 'one vote');
    await pressed.click();
    await expectText(guest.locator('#queue li.entry', { hasText: last }).locator('.vote-count'), /^0$/, 'vote taken back');
    await shoot(guest, 'guest-votes', PHONE);
  });

  it('the skip vote counts against the threshold; at it the track changes', STEP, async () => {
    await host.getByLabel('Skip when').selectOption('1');
    const playing = await guest.locator('#np-title').textContent();
    await expectText(guest.locator('#np-skip-count'), /^0\/2$/, 'two votes needed with two online');
    await guest.locator('#np-skip').click();
    await expectText(host.locator('#np-skip-count'), /^1\/2$/, 'the host sees one vote of two');
    await expectText(guest.locator('#np-skip-text'), /Voted to skip/, 'the guest sees its vote');
    assert.equal(await guest.locator('#np-title').textContent(), playing, 'not skipped yet');
    await host.locator('#np-skip').click();
    await waitFor(async () => (await guest.locator('#np-title').textContent()) !== playing, 'the track changed for the guest');
    await expectText(guest.locator('#np-skip-count'), /^0\/2$/, 'votes cleared for the next track');
  });

  it('"Up next for this room" shows suggestions with reasons; one tap adds one to the queue', STEP, async () => {
    const items = host.locator('#suggestions-list li');
    await waitFor(async () => (await items.count()) > 0, 'suggestions arrive', 30_000);
    const reasons = await host.locator('#suggestions-list .reason').allTextContents();
    assert.ok(reasons.every((r) => r.trim().length > 5), `each has a reason: ${reasons}`);
    // The list follows the room (the skip just now changed it): tap once it holds still.
    let before = '';
    await waitFor(async () => {
      const now = (await host.locator('#suggestions-list .title').allTextContents()).join('|');
      const still = now && now === before;
      before = now;
      if (!still) await sleep(700);
      return still;
    }, 'the suggestions settle', 30_000);
    const name = await items.first().locator('.title').textContent();
    await host.locator('#suggestions-list').getByRole('button', { name: `Add ${name}`, exact: true }).click();
    await waitFor(async () => (await titles(host)).includes(name), 'added to the host queue');
    await waitFor(async () => (await titles(guest)).includes(name), 'the guest sees it');
    await expectText(guest.locator('#suggestions-title'), /Up next for this room/, 'the guest sees the strip too');
  });

  it('host pins a track ("Play next"): it goes first for everyone, marked', STEP, async () => {
    const before = await titles(host);
    const last = before[before.length - 1];
    await host.getByRole('button', { name: `More actions for ${last}`, exact: true }).click();
    await host.getByRole('menuitem', { name: 'Play next', exact: true }).click();
    await waitFor(async () => (await titles(guest))[0] === last, 'the pinned track first on the guest');
    await expectText(guest.locator('#queue li.entry').first().locator('.tag'), /Plays next/, 'marked as playing next');
    const items = await (async () => {
      await guest.getByRole('button', { name: `More actions for ${last}`, exact: true }).click();
      const t = await guest.locator('#row-menu [role=menuitem]').allTextContents();
      await guest.keyboard.press('Escape');
      return t;
    })();
    assert.ok(!items.includes('Play next') && !items.includes('Play now'), `no pin or play for a guest: ${items}`);
  });

  it('host names the guest co-host (who then gets playback controls), and back', STEP, async () => {
    await personAction(host, 'Gia', 'Make co-host');
    await expectText(guest.locator('#role-badge'), /^Co-host$/, 'guest is a co-host');
    await guest.locator('#np-play').waitFor({ state: 'visible' });
    await expectText(host.locator('#people li', { hasText: 'Gia' }).locator('.role-tag'), /Co-host/, 'the role in the list');
    await personAction(host, 'Gia', 'Make a guest');
    await expectText(guest.locator('#role-badge'), /^Guest$/, 'a guest again');
    await guest.locator('#np-play').waitFor({ state: 'hidden' });
  });

  it('host hands the party over (the old host becomes co-host), and gets it back', STEP, async () => {
    await personAction(host, 'Gia', 'Hand the party to Gia');
    await expectText(guest.locator('#role-badge'), /^Host$/, 'Gia hosts');
    await expectText(host.locator('#role-badge'), /^Co-host$/, 'Ana is a co-host now');
    await openTab(guest, 'people');
    await personAction(guest, 'Ana', 'Hand the party to Ana');
    await expectText(host.locator('#role-badge'), /^Host$/, 'Ana hosts again');
    await expectText(guest.locator('#role-badge'), /^Co-host$/, 'Gia is a co-host');
    await personAction(host, 'Gia', 'Make a guest');
    await expectText(guest.locator('#role-badge'), /^Guest$/, 'and a guest again');
    await openTab(guest, 'queue');
  });

  it('guest controls: letting guests skip gives the guest the next button; a per-guest cap is kept', STEP, async () => {
    await host.locator('#settings-card').getByRole('button', { name: 'Skip', exact: true }).click();
    await guest.locator('#np-next').waitFor({ state: 'visible' });
    await host.locator('#settings-card').getByRole('button', { name: 'Skip', exact: true }).click();
    await guest.locator('#np-next').waitFor({ state: 'hidden' });
    await host.getByLabel('Tracks per guest').selectOption('1');
    await waitFor(async () => (await host.getByLabel('Tracks per guest').inputValue()) === '1', 'the cap is shown as set');
    const r = await fetch(`${hub.base}/v1/sessions/${sessionId}`, { headers: { Authorization: `Bearer ${hostToken}` } });
    assert.equal((await r.json()).party.settings.guestQueueCap, 1, 'the hub has the cap');
    await host.getByLabel('Tracks per guest').selectOption('0');
  });

  it('a guest keeps the account with an email and a password (claim)', STEP, async () => {
    await guest.locator('#claim-open').click();
    await guest.locator('#claim-email').fill('gia@example.com');
    await guest.locator('#claim-password').fill('correct horse battery');
    await guest.locator('#form-claim').getByRole('button', { name: 'Keep account' }).click();
    await guest.locator('#claim-panel').waitFor({ state: 'hidden' });
    await guest.locator('#claim-open').waitFor({ state: 'hidden' });
    assert.ok(await guest.locator('#sign-out').isVisible(), 'an ordinary account signs out from the top bar');
    const r = await fetch(`${hub.base}/v1/auth/token`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ email: 'gia@example.com', password: 'correct horse battery' }),
    });
    assert.equal(r.status, 200, 'Gia signs in with them now');
    await expectText(guest.locator('#conn-badge'), /^Live$/, 'still in the party');
  });

  it('the TV view at 1920×1080 shows now playing, up next, the code and the QR', STEP, async () => {
    await tv.goto(`${web}/tv/${code}`);
    const playing = await host.locator('#np-title').textContent();
    await expectText(tv.locator('#tv-track'), new RegExp(`^${escapeRe(playing)}$`), 'what plays, large');
    await expectText(tv.locator('#tv-title'), /^Rooftop party$/, 'the party');
    await expectText(tv.locator('#tv-code'), new RegExp(`^${code.slice(0, 3)} ${code.slice(3)}$`), 'the code');
    assert.equal(await tv.locator('#tv-qr svg path').count(), 1, 'the QR');
    await expectText(tv.locator('#tv-online'), /^2 people listening$/, 'online count without the TV itself');
    const upNext = await tv.locator('#tv-queue li .title').allTextContents();
    assert.deepEqual(upNext, (await titles(host)).slice(0, 7), 'up next as the queue');
    const a = Number(await tv.locator('#tv-bar').getAttribute('data-position-ms'));
    await sleep(1500);
    const b = Number(await tv.locator('#tv-bar').getAttribute('data-position-ms'));
    assert.ok(b > a, `TV progress advances ${a} → ${b}`);
    const fontPx = await tv.locator('#tv-track').evaluate((e) => parseFloat(getComputedStyle(e).fontSize));
    assert.ok(fontPx >= 48, `readable across a room (${fontPx}px)`);
    const overflow = await tv.evaluate(() => [document.documentElement.scrollWidth - innerWidth, document.documentElement.scrollHeight - innerHeight]);
    assert.ok(overflow[0] <= 0 && overflow[1] <= 0, `fits the screen: ${overflow}`);
  });

  it('phone guest: 44 px targets on every tab, nothing sideways', STEP, async () => {
    await guest.setViewportSize(PHONE);
    for (const tab of ['queue', 'add', 'people']) {
      await openTab(guest, tab);
      await sleep(150);
      assert.deepEqual(await smallTargets(guest), [], `guest, ${tab} tab: every control at least 44×44`);
      const overflow = await guest.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `no horizontal scroll on ${tab} (${overflow}px)`);
    }
    await openTab(guest, 'queue');
    assert.deepEqual(await smallTargets(host), [], 'host laptop: every control at least 44×44');
  });

  it('saves screenshots: phone guest 390×844, host laptop 1280×800, TV 1920×1080', STEP, async () => {
    const files = [
      await shoot(guest, 'guest', PHONE),
      await shoot(host, 'host', LAPTOP),
      await shoot(tv, 'tv', TV),
    ];
    await openTab(guest, 'people');
    files.push(await shoot(guest, 'guest-people', PHONE));
    files.push(await shoot(host, 'host-full', LAPTOP, { full: true }));
    await openTab(guest, 'queue');
    for (const f of files) assert.ok(fs.statSync(f).size > 10_000, `${f} written`);
  });

  it('host removes the guest with a ban → the guest is told so, plainly', STEP, async () => {
    await tv.close();
    await personAction(host, 'Gia', 'Remove and ban');
    await guest.locator('#removed-banner').waitFor({ state: 'visible' });
    await expectText(guest.locator('#removed-title'), /removed from this party and banned/, 'the removed message');
    await expectText(guest.locator('#conn-badge'), /^Banned$/, 'the badge');
    await expectText(host.locator('#banned li'), /Gia/, 'the host sees the ban');
    await waitFor(async () => !(await host.locator('#people li', { hasText: 'Gia' }).count()), 'Gia left the member list');
    await shoot(guest, 'guest-removed', PHONE);
    assert.deepEqual(errors, [], 'no uncaught page errors');
  });
});

