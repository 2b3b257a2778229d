// Browser tests of the Audotics Hub web client: a real hub (private Postgres,
// demo catalog) and headless Debian Chromium driven by playwright-core. The
// people of issue 18: a host (laptop-sized mouse user, then on a touch
// phone), a guest on a light-mode touch phone (390×844), and a late friend
// who reaches the hub through a TCP proxy at another address — the proxy
// can stop forwarding, as a dead NAT or a stalled middlebox does.
//
// Run: tests/browser/run.sh  (or `node --test tests/browser/` with the hub
// built at target/debug/audotics-hub, or HUB_BIN pointing at a binary). The
// hub serves this tree's web/ (--web-dir; WEB_DIR overrides), so the client
// under test is the one in the working tree even when the binary was built
// earlier.

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import {
  UI_TIMEOUT, escapeRe, expectText, freePort, openTab, rawOps, sleep, smallTargets, titles,
} from './helpers.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const HUB_BIN = process.env.HUB_BIN || path.join(ROOT, 'target', 'debug', 'audotics-hub');
const WEB_DIR = process.env.WEB_DIR || path.join(ROOT, 'web');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARTIFACTS = path.join(HERE, 'artifacts');
const STEP = { timeout: 90_000 };
/** The late friend's name for the machine: not a loopback name, so its invite link is one a phone could open. */
const FRIEND_HOST = 'party.test';

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

// ------------------------------------------------------------------ the hub



class Hub {
  constructor(dataDir, port) {
    this.dataDir = dataDir;
    this.port = port;
    this.base = `http://127.0.0.1:${port}`;
    this.proc = null;
    this.runs = 0;
  }

  async start() {
    this.runs += 1;
    const log = fs.openSync(path.join(ARTIFACTS, `hub-run-${this.runs}.log`), 'w');
    const proc = spawn(HUB_BIN, [
      'serve', '--bind', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--demo', '--web-dir', WEB_DIR,
    ], { stdio: ['ignore', log, log], env: { ...process.env, RUST_LOG: process.env.RUST_LOG || 'info' } });
    fs.closeSync(log);
    this.proc = proc;
    this.exited = new Promise((resolve) => proc.on('exit', (code, signal) => resolve({ code, signal })));
    const deadline = Date.now() + 120_000;
    while (Date.now() < deadline) {
      if (proc.exitCode !== null || proc.signalCode !== null) {
        throw new Error(`hub exited early (${proc.exitCode ?? proc.signalCode}); see artifacts/hub-run-${this.runs}.log`);
      }
      try {
        const r = await fetch(`${this.base}/readyz`, { signal: AbortSignal.timeout(2000) });
        if (r.ok) return;
      } catch { /* not yet */ }
      await sleep(250);
    }
    throw new Error('hub did not become ready within 120 s');
  }

  async kill(signal) {
    if (!this.proc || this.proc.exitCode !== null || this.proc.signalCode !== null) return;
    this.proc.kill(signal);
    const done = await Promise.race([this.exited, sleep(30_000).then(() => null)]);
    if (!done) {
      this.proc.kill('SIGKILL');
      await this.exited;
      throw new Error(`hub did not exit on ${signal} within 30 s`);
    }
  }

  async api(method, p, token, body) {
    const headers = { Accept: 'application/json' };
    if (token) headers.Authorization = `Bearer ${token}`;
    if (body) headers['Content-Type'] = 'application/json';
    const r = await fetch(`${this.base}/v1${p}`, {
      method, headers, body: body ? JSON.stringify(body) : undefined, signal: AbortSignal.timeout(10_000),
    });
    const data = await r.json().catch(() => null);
    return { status: r.status, data };
  }
}

/**
 * A TCP proxy in front of the hub. `stallWebSockets()` makes it stop
 * forwarding on every WebSocket it carries — in both directions, closes
 * included — while new connections still pass: a half-open socket, as a
 * NAT that forgot the connection or a middlebox that hung leaves behind.
 */
class StallingProxy {
  constructor(targetPort) {
    this.targetPort = targetPort;
    this.links = new Set();
    this.accepted = 0;
  }

  async start() {
    this.server = net.createServer((client) => {
      this.accepted += 1;
      const upstream = net.connect(this.targetPort, '127.0.0.1');
      const link = { client, upstream, websocket: false, stalled: false };
      this.links.add(link);
      client.on('data', (d) => {
        if (!link.websocket && /^upgrade:\s*websocket/im.test(d.toString('latin1'))) link.websocket = true;
        if (!link.stalled) upstream.write(d);
      });
      upstream.on('data', (d) => { if (!link.stalled) client.write(d); });
      const end = () => {
        if (link.stalled) return; // a stalled link forwards nothing, not even its end
        client.destroy();
        upstream.destroy();
        this.links.delete(link);
      };
      for (const s of [client, upstream]) {
        s.on('close', end);
        s.on('error', () => {});
      }
    });
    await new Promise((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    this.port = this.server.address().port;
  }

  stallWebSockets() {
    let n = 0;
    for (const link of this.links) {
      if (link.websocket && !link.stalled) {
        link.stalled = true;
        n += 1;
      }
    }
    return n;
  }

  async close() {
    for (const { client, upstream } of this.links) {
      client.destroy();
      upstream.destroy();
    }
    await new Promise((resolve) => this.server.close(resolve));
  }
}

// ------------------------------------------------------------------ page helpers


/** Wait until the page's queue titles equal `expected` (or the timeout). */
async function expectQueue(page, expected, what, timeout = UI_TIMEOUT) {
  const deadline = Date.now() + timeout;
  let seen;
  while (Date.now() < deadline) {
    seen = await titles(page);
    if (JSON.stringify(seen) === JSON.stringify(expected)) return;
    await sleep(100);
  }
  assert.deepEqual(seen, expected, `${what}: queue differs`);
}


async function signUp(page, name, email) {
  await page.getByRole('tab', { name: 'Create account' }).click();
  await page.getByLabel('Display name').fill(name);
  await page.locator('#signup-email').fill(email);
  await page.locator('#signup-password').fill('correct horse battery');
  await page.locator('#form-signup').getByRole('button', { name: 'Create account' }).click();
}

async function waitLive(page, timeout = UI_TIMEOUT) {
  await expectText(page.locator('#conn-badge'), /^Live$/, 'connection badge shows Live', timeout);
}


async function search(page, query) {
  await openTab(page, 'add');
  await page.getByLabel('Search the catalog').fill(query);
  await page.locator('#form-search').getByRole('button', { name: 'Search' }).click();
  await expectText(page.locator('#search-status'), new RegExp(`for “${escapeRe(query)}”|No tracks match|didn't work`), `search for ${query} answered`);
}

async function addFromSearch(page, query, nth) {
  await search(page, query);
  const buttons = page.locator('#results button[data-track]');
  await buttons.nth(nth).waitFor({ timeout: UI_TIMEOUT });
  const name = await buttons.nth(nth).getAttribute('data-name');
  await buttons.nth(nth).click();
  await expectText(buttons.nth(nth), /Added/, `${name} added`);
  await openTab(page, 'queue');
  return name;
}

/** A row's ⋯ menu, then one of its items. */
async function rowAction(page, trackName, item) {
  await openTab(page, 'queue');
  await page.getByRole('button', { name: `More actions for ${trackName}`, exact: true }).click();
  await page.getByRole('menuitem', { name: item, exact: true }).click();
}

/** The items a row's ⋯ menu offers. */
async function menuItems(page, trackName) {
  await page.getByRole('button', { name: `More actions for ${trackName}`, exact: true }).click();
  const items = await page.locator('#row-menu [role=menuitem]').allTextContents();
  await page.keyboard.press('Escape');
  return items;
}


/** A finger on a touch screen: press at `from`, slide to `to`, lift (CDP touch events). */
async function touchDrag(page, from, to) {
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [{ x: from.x, y: from.y }] });
  const steps = 14;
  for (let i = 1; i <= steps; i += 1) {
    await cdp.send('Input.dispatchTouchEvent', {
      type: 'touchMove',
      touchPoints: [{ x: from.x + ((to.x - from.x) * i) / steps, y: from.y + ((to.y - from.y) * i) / steps }],
    });
    await sleep(16);
  }
  await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
  await cdp.detach();
}

const center = (b) => ({ x: b.x + b.width / 2, y: b.y + b.height / 2 });


async function shoot(page, name, viewport) {
  await page.setViewportSize(viewport);
  await page.evaluate(() => {
    document.activeElement?.blur();
    document.querySelector('#toast').hidden = true; // transient
    window.scrollTo(0, 0);
  });
  await sleep(300);
  const file = path.join(ARTIFACTS, `${name}-${viewport.width}x${viewport.height}.png`);
  await page.screenshot({ path: file });
  return file;
}

// ------------------------------------------------------------------ the scenarios

describe('web client in a real browser', { timeout: 900_000 }, () => {
  let tmp;
  let hub;
  let proxy;
  let browser;
  let hostCtx;
  let guestCtx;
  let friendCtx;
  let hostPhoneCtx;
  let host;
  let guest;
  let friend;
  let hostPhone;
  let sessionId;
  let shareLink;
  let hostToken;
  let guestToken;
  const expected = []; // the queue titles we expect, in order
  const consoleErrors = [];

  const watch = (who, page) => page.on('pageerror', (e) => consoleErrors.push(`${who}: ${e.message}`));

  /** Tracks of the demo catalog for `q` that are not queued yet. */
  async function freshTracks(q, n) {
    const r = await hub.api('GET', `/tracks?q=${encodeURIComponent(q)}&limit=50`, hostToken);
    const seen = new Set(expected);
    const picked = [];
    for (const t of r.data.tracks) {
      if (!seen.has(t.name) && picked.length < n) {
        seen.add(t.name);
        picked.push(t);
      }
    }
    assert.equal(picked.length, n, `${n} fresh tracks for ${q}`);
    return picked;
  }

  before(async () => {
    assert.ok(fs.existsSync(HUB_BIN), `hub binary not found at ${HUB_BIN}: build it (cargo build --bin audotics-hub) or set HUB_BIN`);
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install -y chromium`);
    fs.rmSync(ARTIFACTS, { recursive: true, force: true });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audotics-browser-'));
    hub = new Hub(path.join(tmp, 'data'), await freePort());
    await hub.start();
    proxy = new StallingProxy(hub.port);
    await proxy.start();
    // Playwright gives each launch a fresh temporary profile (user data dir)
    // of its own and removes it on close; it refuses a --user-data-dir arg.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 60_000,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        `--host-resolver-rules=MAP ${FRIEND_HOST} 127.0.0.1`,
      ],
    });
    hostCtx = await browser.newContext({ viewport: PHONE, colorScheme: 'dark' });
    guestCtx = await browser.newContext({ viewport: PHONE, colorScheme: 'light', hasTouch: true, isMobile: true });
    friendCtx = await browser.newContext({ viewport: PHONE, colorScheme: 'dark', hasTouch: true, isMobile: true });
    for (const ctx of [hostCtx, guestCtx, friendCtx]) {
      ctx.setDefaultTimeout(UI_TIMEOUT);
      ctx.setDefaultNavigationTimeout(30_000);
    }
    host = await hostCtx.newPage();
    guest = await guestCtx.newPage();
    friend = await friendCtx.newPage();
    watch('host', host);
    watch('guest', guest);
    watch('friend', friend);
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await proxy?.close().catch(() => {});
    await hub?.kill('SIGTERM').catch((e) => console.error(e.message));
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('serves the client, its modules, manifest and icons with content types', STEP, async () => {
    const files = [
      ['/', 'text/html'], ['/app.js', 'text/javascript'], ['/style.css', 'text/css'],
      ['/vendor/qrcode.mjs', 'text/javascript'], ['/favicon.svg', 'image/svg+xml'],
      ['/manifest.webmanifest', 'application/manifest+json'],
      ['/icons/icon.svg', 'image/svg+xml'], ['/icons/icon-192.png', 'image/png'],
      ['/icons/icon-512.png', 'image/png'], ['/icons/icon-maskable-512.png', 'image/png'],
      ['/icons/apple-touch-icon.png', 'image/png'],
    ];
    for (const f of fs.readdirSync(path.join(WEB_DIR, 'js'))) files.push([`/js/${f}`, 'text/javascript']);
    for (const [p, type] of files) {
      const r = await fetch(hub.base + p);
      assert.equal(r.status, 200, p);
      assert.ok(r.headers.get('content-type').startsWith(type), `${p}: ${r.headers.get('content-type')}`);
      assert.ok(r.headers.get('etag'), `${p} has an ETag`);
    }
  });

  it('host signs up, sees a hub error in words, and creates a session', STEP, async () => {
    await host.goto(hub.base + '/');
    // A wrong password is refused by the hub; the form says so in words.
    await host.locator('#signin-email').fill('nobody@example.com');
    await host.locator('#signin-password').fill('wrong-password');
    await host.locator('#form-signin').getByRole('button', { name: 'Sign in' }).click();
    await expectText(host.locator('#form-signin .form-error'), /Sign-in failed: wrong email or password/, 'sign-in error shown');
    await signUp(host, 'Hana Host', 'hana@example.com');
    await host.getByLabel('Session name').fill('Friday listening party');
    await host.getByRole('button', { name: 'Create session' }).click();
    await waitLive(host);
    await expectText(host.locator('#role-badge'), /Host/, 'host badge');
    await expectText(host.locator('#session-title'), /Friday listening party/, 'session name');
    sessionId = host.url().match(/#\/s\/([0-9a-f-]+)/)[1];
    shareLink = await host.locator('#share-link').inputValue();
    assert.equal(shareLink, `${hub.base}/#/s/${sessionId}`);
    assert.ok(await host.locator('#qr svg path').count() === 1, 'QR code drawn locally as SVG');
    hostToken = await host.evaluate(() => localStorage.getItem('audotics.token'));
    assert.ok(hostToken);
  });

  it('host adds tracks by searching the demo catalog', STEP, async () => {
    for (let i = 0; i < 3; i += 1) {
      expected.push(await addFromSearch(host, 'Heart', i));
      await expectQueue(host, expected, `host after adding ${i + 1}`);
    }
    await expectText(host.locator('#queue li.entry .added'), /Added by you/, 'who added it');
  });

  it('guest joins by the shared link', STEP, async () => {
    await guest.goto(shareLink);
    await expectText(guest.locator('#auth-lead'), /join this session/, 'sign-in prompt mentions the session');
    await signUp(guest, 'Gus Guest', 'gus@example.com');
    await waitLive(guest);
    await expectText(guest.locator('#role-badge'), /Guest/, 'guest badge');
    await expectQueue(guest, expected, 'guest sees the queue');
    await expectText(guest.locator('#queue li.entry .added'), /Added by Hana Host/, 'guest sees who added');
    guestToken = await guest.evaluate(() => localStorage.getItem('audotics.token'));
    // Presence: each sees the other listening (and how many, at the top).
    await expectText(host.locator('#people li.online'), /Gus Guest/, 'host sees the guest listening');
    await expectText(guest.locator('#people li.online'), /Hana Host/, 'guest sees the host listening');
    await expectText(host.locator('#people-summary'), /2 listening/, 'presence under the session name');
  });

  it('guest adds a track → host sees it', STEP, async () => {
    const name = await addFromSearch(guest, 'Midnight', 0);
    expected.push(name);
    await expectQueue(host, expected, 'host sees the guest track');
    await expectQueue(guest, expected, 'guest sees its own track');
    const last = host.locator('#queue li.entry').last();
    await expectText(last.locator('.added'), /Added by Gus Guest/, 'host sees who added it');
  });

  it('guest adds a pasted Spotify link → host sees it', STEP, async () => {
    await openTab(guest, 'add');
    await guest.getByLabel('Or paste a Spotify track link or ID').fill('not a link');
    await guest.locator('#form-spotify').getByRole('button', { name: 'Add' }).click();
    await expectText(guest.locator('#spotify-status'), /not a Spotify track link or ID/, 'bad paste explained next to the field');
    await guest.getByLabel('Or paste a Spotify track link or ID').fill('https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=abc');
    await guest.locator('#form-spotify').getByRole('button', { name: 'Add' }).click();
    expected.push('Spotify track 4uLU6hMCjMI75M1A2tKUQC');
    await expectQueue(host, expected, 'host sees the pasted track');
    await openTab(guest, 'queue');
  });

  it('guest has no reorder controls, and the hub refuses a forged reorder', STEP, async () => {
    await expectQueue(guest, expected, 'guest is up to date');
    assert.equal(await guest.locator('#queue .handle').count(), 0, 'no drag handles for the guest');
    // Remove only on own entries; no Move anywhere.
    let removable = 0;
    for (const name of expected) {
      const items = await menuItems(guest, name);
      assert.ok(!items.some((t) => /^Move/.test(t)), `no move items for the guest on ${name}: ${items}`);
      if (items.includes('Remove')) removable += 1;
    }
    assert.equal(removable, 2, 'guest can remove its 2 own entries only');
    // Forge a reorder on a raw WebSocket with the guest's token.
    const firstEntry = await host.locator('#queue li.entry').first().getAttribute('data-entry');
    const [answer] = await rawOps(guest, sessionId, [{ type: 'reorder', entryId: firstEntry, toIndex: 4 }]);
    assert.equal(answer.type, 'error', JSON.stringify(answer));
    assert.equal(answer.code, 'forbidden');
    await sleep(300);
    await expectQueue(host, expected, 'host queue unchanged by the forged reorder');
    await expectQueue(guest, expected, 'guest queue unchanged by the forged reorder');
  });

  it('host drags to reorder with a mouse → guest sees the new order', STEP, async () => {
    assert.equal(await host.locator('#queue .handle').count(), expected.length, 'a handle on every row');
    // A real mouse drag: press on the 4th entry's handle, move in steps over
    // the 1st, release. Both must be on screen.
    await host.evaluate(() => window.scrollTo(0, 0));
    const entries = host.locator('#queue li.entry');
    const from = await entries.nth(3).locator('.handle').boundingBox();
    const to = await entries.nth(0).locator('.title').boundingBox();
    assert.ok(from && to && to.y > 60 && from.y + from.height < PHONE.height, `entries on screen: ${JSON.stringify({ from, to })}`);
    await host.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await host.mouse.down();
    await host.mouse.move(from.x + from.width / 2 + 4, from.y + 2, { steps: 5 });
    await host.mouse.move(to.x + 10, to.y + to.height / 2, { steps: 15 });
    await host.mouse.up();
    expected.unshift(expected.splice(3, 1)[0]);
    await expectQueue(host, expected, 'host after drag');
    await expectQueue(guest, expected, 'guest sees the dragged order');
  });

  it('host reorders by keyboard (arrow keys on the handle) → guest sees it; focus follows', STEP, async () => {
    const name = expected[0];
    const handle = host.getByRole('button', { name: new RegExp(`^Reorder ${escapeRe(name)},`) });
    await handle.focus();
    await host.keyboard.press('ArrowDown');
    [expected[0], expected[1]] = [expected[1], expected[0]];
    await expectQueue(host, expected, 'host after keyboard move');
    await expectQueue(guest, expected, 'guest sees the keyboard move');
    const focused = await host.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    assert.match(focused || '', new RegExp(`^Reorder ${escapeRe(name)}, 2 of`), 'focus stays on the moved entry');
  });

  it('reactions show up for the other user', STEP, async () => {
    await openTab(guest, 'queue');
    await guest.getByRole('button', { name: `Like ${expected[0]}`, exact: true }).click();
    await expectText(host.locator('#feed li'), new RegExp(`Gus Guest liked “${escapeRe(expected[0])}”`), 'host sees the like');
    await expectText(guest.locator('#feed li'), new RegExp(`You liked “${escapeRe(expected[0])}”`), 'guest sees its own like');
    assert.equal(await guest.getByRole('button', { name: `Like ${expected[0]}`, exact: true }).getAttribute('aria-pressed'), 'true', 'the like shows as given');
    await rowAction(host, expected[1], 'Vote to skip');
    await expectText(guest.locator('#feed li'), new RegExp(`Hana Host wants to skip “${escapeRe(expected[1])}”`), 'guest sees the skip');
  });

  it('guest removes its own entry → host sees it gone', STEP, async () => {
    const name = 'Spotify track 4uLU6hMCjMI75M1A2tKUQC';
    await rowAction(guest, name, 'Remove');
    expected.splice(expected.indexOf(name), 1);
    await expectQueue(host, expected, 'host after the guest removed');
    await expectQueue(guest, expected, 'guest after removing');
  });

  it('hub killed (SIGKILL) and restarted → both pages resume without a reload; meanwhile the guest is told where it looks, and its change waits in view', STEP, async () => {
    await host.evaluate(() => { window.__noReload = 'host'; });
    await guest.evaluate(() => { window.__noReload = 'guest'; });
    const before = await host.evaluate(() => window.audotics.version);
    // The guest is on the Add tab with results, scrolled down to them.
    await search(guest, 'night');
    const results = guest.locator('#results button[data-track]');
    const names = await results.evaluateAll((bs) => bs.map((b) => b.dataset.name));
    let pick = names.length - 1;
    while (pick > 0 && expected.includes(names[pick])) pick -= 1;
    assert.ok(pick > 6, `a result far enough down to scroll to (${names.length} results)`);
    const waiting = names[pick];
    await results.nth(pick).scrollIntoViewIfNeeded();
    assert.ok(await guest.evaluate(() => window.scrollY) > 0, 'guest is scrolled down');

    await hub.kill('SIGKILL');
    await expectText(host.locator('#notice'), /Can't reach the hub/, 'host is told');
    await expectText(guest.locator('#conn-badge'), /Reconnecting…/, 'guest badge shows reconnecting');
    // A change made now waits, and the page says which one, in view.
    await results.nth(pick).click();
    await expectText(guest.locator('#notice'), new RegExp(`Can't reach the hub.*Your change will be sent when the connection is back: add “${escapeRe(waiting)}”`), 'the waiting change is named');
    await expectText(guest.locator('#queue-waiting li'), new RegExp(`${escapeRe(waiting)}.*Waiting for the connection`), 'the waiting track is shown in the queue');
    // A new search fails here, not silently: no stale results of "night".
    await guest.getByLabel('Search the catalog').fill('summer');
    await guest.locator('#form-search').getByRole('button', { name: 'Search' }).click();
    await expectText(guest.locator('#search-status'), /Search didn't work\. Can't reach the hub/, 'search error next to the search field');
    assert.equal(await guest.locator('#results li').count(), 0, 'the previous query\'s results are gone');
    const notice = await guest.locator('#notice').boundingBox();
    assert.ok(notice && notice.y >= 0 && notice.y + notice.height <= PHONE.height, `the notice is on screen where the guest is: ${JSON.stringify(notice)}`);
    assert.equal(await guest.locator('[role=alert]:visible, .error:visible').count(), 1, 'one message, not a stack');
    await guest.screenshot({ path: path.join(ARTIFACTS, 'guest-hub-down-390x844.png') });

    await hub.start();
    await waitLive(host);
    await waitLive(guest);
    assert.equal(await host.evaluate(() => window.__noReload), 'host', 'host page was not reloaded');
    assert.equal(await guest.evaluate(() => window.__noReload), 'guest', 'guest page was not reloaded');
    expected.push(waiting);
    await expectQueue(host, expected, 'host queue after restart (with the waiting add, once)');
    await expectQueue(guest, expected, 'guest queue after restart');
    assert.equal(await guest.locator('#notice').isVisible(), false, 'no notice while live');
    assert.equal(await host.evaluate(() => window.audotics.version), before + 1, 'exactly one change was applied while away');
    // The hub's own view agrees.
    const snap = await hub.api('GET', `/sessions/${sessionId}`, hostToken);
    assert.equal(snap.status, 200);
    assert.deepEqual(snap.data.queue.map((e) => e.track.name), expected, 'hub snapshot = pages');
    assert.deepEqual(await host.evaluate(() => window.audotics.queue), snap.data.queue.map((e) => e.entryId));
    assert.deepEqual(await guest.evaluate(() => window.audotics.queue), snap.data.queue.map((e) => e.entryId));
    // And the session goes on: a change after the restart reaches the guest.
    await rowAction(host, expected[1], 'Move up');
    [expected[0], expected[1]] = [expected[1], expected[0]];
    await expectQueue(guest, expected, 'guest sees a move made after the restart');
    await expectText(host.locator('#people li.online'), /Gus Guest/, 'presence back after restart');
    await openTab(guest, 'queue');
  });

  it('a late friend joins through a proxy at another address; the invite warns only where its link is loopback', STEP, async () => {
    await friend.goto(`http://${FRIEND_HOST}:${proxy.port}/#/s/${sessionId}`);
    await signUp(friend, 'Lou Late', 'lou@example.com');
    await waitLive(friend);
    await expectQueue(friend, expected, 'friend sees the queue');
    // The friend's address is one a phone can open: its QR says so, no warning.
    const friendLink = await friend.locator('#share-link').inputValue();
    assert.equal(friendLink, `http://${FRIEND_HOST}:${proxy.port}/#/s/${sessionId}`);
    assert.equal(await friend.locator('#invite-warning').getAttribute('hidden'), '', 'no warning for a network address');
    await expectText(friend.locator('#qr-caption'), /Scan to join/, 'friend QR caption');
    // The host opened the hub at 127.0.0.1 (the default bind): its QR is a
    // link no phone can open, and the invite says so with the way out.
    await openTab(host, 'people');
    const warning = host.locator('#invite-warning');
    assert.ok(await warning.isVisible(), 'host sees the loopback warning');
    await expectText(warning, /Phones can't open this link.*127\.0\.0\.1.*--bind 0\.0\.0\.0:\d+/, 'warning names the fix');
    await expectText(host.locator('#qr-caption'), /only on this computer/, 'QR caption says so');
    await openTab(host, 'queue');
  });

  it('an offline blip of 10 s returns to Live by itself, queue caught up', STEP, async () => {
    await friendCtx.setOffline(true);
    const started = Date.now();
    await expectText(friend.locator('#conn-badge'), /Offline|Reconnecting/, 'friend shows it is offline', 5000);
    await expectText(friend.locator('#notice'), /offline|Reconnecting|can't reach/i, 'the notice says so');
    const [track] = await freshTracks('summer', 1);
    const [ack] = await rawOps(host, sessionId, [{ type: 'add', trackId: track.id }]);
    assert.equal(ack.type, 'ack', JSON.stringify(ack));
    expected.push(track.name);
    await sleep(Math.max(0, 10_000 - (Date.now() - started)));
    await friendCtx.setOffline(false);
    await waitLive(friend, 10_000);
    await expectQueue(friend, expected, 'friend caught up after the blip', 10_000);
    assert.equal(await friend.locator('#notice').isVisible(), false, 'no notice left over');
    await sleep(1500);
    await expectText(friend.locator('#conn-badge'), /^Live$/, 'still Live a moment later');
  });

  it('a half-open socket (a proxy that stops forwarding) is noticed by the heartbeat and replaced', STEP, async () => {
    await waitLive(friend);
    const acceptedBefore = proxy.accepted;
    assert.equal(proxy.stallWebSockets(), 1, 'the friend\'s WebSocket goes through the proxy');
    const stalledAt = Date.now();
    const [track] = await freshTracks('summer', 1);
    await rawOps(host, sessionId, [{ type: 'add', trackId: track.id }]);
    expected.push(track.name);
    await expectQueue(host, expected, 'host has the new track');
    // Ping every 10 s, dead after 5 s without a pong: at most ~15 s.
    await expectText(friend.locator('#conn-badge'), /Reconnecting…|Offline/, 'friend notices the dead socket', 17_000);
    const noticedMs = Date.now() - stalledAt;
    assert.ok(noticedMs <= 16_500, `noticed within 15 s (+ slack): ${noticedMs} ms`);
    await expectQueue(friend, expected, 'friend resumes on a new connection and catches up', 10_000);
    await waitLive(friend);
    assert.ok(proxy.accepted > acceptedBefore, 'a new connection went through the proxy');
    console.log(`    half-open socket noticed after ${noticedMs} ms`);
  });

  it('toasts: a burst by two people is one toast, coalesced, never over the queue', STEP, async () => {
    await openTab(guest, 'queue');
    await guest.evaluate(() => {
      window.scrollTo(0, 0);
      // Sample what a person would see: every visible toast and whether one
      // covers a queue row.
      window.__toastSamples = [];
      const visible = (e) => { const r = e.getBoundingClientRect(); return r.width > 0 && r.height > 0 && getComputedStyle(e).visibility !== 'hidden'; };
      window.__toastTimer = setInterval(() => {
        const toasts = [...document.querySelectorAll('.toast, [role=status].toast')].filter(visible);
        const rows = [...document.querySelectorAll('#queue li')].filter(visible).map((e) => e.getBoundingClientRect());
        const over = toasts.some((t) => {
          const a = t.getBoundingClientRect();
          return rows.some((b) => a.left < b.right && b.left < a.right && a.top < b.bottom && b.top < a.bottom);
        });
        const text = toasts.map((t) => (t.querySelector('.toast-text') || t).textContent.trim()).join(' / ');
        window.__toastSamples.push({ n: toasts.length, over, text });
      }, 25);
    });
    const tracks = await freshTracks('summer', 5);
    const hostOps = tracks.slice(0, 3).map((t) => ({ type: 'add', trackId: t.id }));
    const friendOps = tracks.slice(3).map((t) => ({ type: 'add', trackId: t.id }));
    const likes = [expected[0], expected[1]];
    const likeIds = (await hub.api('GET', `/sessions/${sessionId}`, hostToken)).data.queue
      .filter((e) => likes.includes(e.track.name)).map((e) => e.track.id);
    await Promise.all([
      rawOps(host, sessionId, [...hostOps, ...likeIds.map((trackId) => ({ type: 'interaction', trackId, kind: 'like' }))]),
      rawOps(friend, sessionId, friendOps),
    ]);
    // Two writers at once: the hub decides how their adds interleave.
    const order = (await hub.api('GET', `/sessions/${sessionId}`, hostToken)).data.queue.map((e) => e.track.name);
    assert.deepEqual(order.slice(0, expected.length), expected, 'the queue before the burst is unchanged');
    assert.deepEqual([...order.slice(expected.length)].sort(), tracks.map((t) => t.name).sort(), 'the burst was added');
    expected.splice(0, expected.length, ...order);
    await expectQueue(guest, expected, 'guest has the burst');
    await sleep(600);
    const samples = await guest.evaluate(() => {
      clearInterval(window.__toastTimer);
      return window.__toastSamples;
    });
    const most = Math.max(...samples.map((s) => s.n));
    assert.equal(most, 1, `at most one toast at a time (saw up to ${most})`);
    assert.ok(!samples.some((s) => s.over), 'no toast over a queue row');
    const last = samples.filter((s) => s.n).pop().text;
    assert.match(last, /^(Hana Host and Lou Late|Lou Late and Hana Host) added 5 tracks · 2 likes$/, `one line sums it up: ${last}`);
    // The guest's own view of the burst stays in the feed.
    await expectText(guest.locator('#feed li'), /Hana Host liked/, 'likes kept in the feed');
  });

  it('refused changes are told in plain words, in one notice, never the hub\'s jargon', STEP, async () => {
    // A second host tab whose socket goes through a hold: updates can be held
    // back, so the tab acts on a queue that already changed — a real conflict
    // and a real "entry not found" from the hub.
    const tab = await hostCtx.newPage();
    watch('host tab 2', tab);
    let hold = false;
    const held = [];
    let toPage = null;
    await tab.routeWebSocket(/\/v1\/ws$/, (ws) => {
      const server = ws.connectToServer();
      toPage = ws;
      server.onMessage((m) => {
        if (hold && /"type":"update"/.test(String(m))) held.push(m);
        else ws.send(m);
      });
    });
    await tab.goto(`${hub.base}/#/s/${sessionId}`);
    await waitLive(tab);
    await expectQueue(tab, expected, 'second tab is up to date');
    hold = true;
    const [gone] = await freshTracks('river', 1);
    // Inserted at the top: a change of the order (an add at the end would
    // not be one: the hub rebases moves over appends — protocol/README.md).
    const first = expected[0];
    await rawOps(guest, sessionId, [{ type: 'add', trackId: gone.id, index: 0 }]);
    expected.unshift(gone.name);
    await expectQueue(host, expected, 'the first tab sees the add');
    // A move based on the version before the add → conflict.
    await tab.getByRole('button', { name: new RegExp(`^Reorder ${escapeRe(first)},`) }).focus();
    await tab.keyboard.press('ArrowDown');
    await expectText(tab.locator('#notice'), new RegExp(`Couldn't move “${escapeRe(first)}”: someone changed the queue at the same moment\\. Try again\\.`), 'conflict in words');
    // The first tab removes an entry; the second, not told, removes it too.
    const victim = expected[2];
    await rowAction(host, victim, 'Remove');
    expected.splice(2, 1);
    await expectQueue(host, expected, 'removed in the first tab');
    await rowAction(tab, victim, 'Remove');
    await expectText(tab.locator('#notice'), new RegExp(`Couldn't remove “${escapeRe(victim)}”: it was already removed\\.`), 'not found in words');
    const text = await tab.evaluate(() => document.body.innerText);
    for (const jargon of ['baseVersion', 'current version', 'entry not found', 'not accepted', 'conflict', 'not_found']) {
      assert.ok(!text.includes(jargon), `no “${jargon}” on the page`);
    }
    assert.equal(await tab.locator('#notice:visible, [role=alert]:visible, .error:visible').count(), 1, 'one notice, not a stack');
    // The notice's dismiss button fits on a phone.
    const dismiss = await tab.locator('#notice .notice-dismiss').boundingBox();
    assert.ok(dismiss.x + dismiss.width <= PHONE.width && dismiss.width >= 43.5 && dismiss.height >= 43.5, `Dismiss fits: ${JSON.stringify(dismiss)}`);
    await tab.screenshot({ path: path.join(ARTIFACTS, 'host-refused-390x844.png') });
    // Let the held updates through: the tab catches up.
    hold = false;
    for (const m of held.splice(0)) toPage.send(m);
    await expectQueue(tab, expected, 'second tab catches up');
    await tab.locator('#notice .notice-dismiss').click();
    assert.equal(await tab.locator('#notice').isVisible(), false, 'dismissed');
    await tab.close();
  });

  it('host on a touch phone drags a track with a finger', STEP, async () => {
    const user = JSON.parse(await host.evaluate(() => localStorage.getItem('audotics.user')));
    hostPhoneCtx = await browser.newContext({ viewport: PHONE, colorScheme: 'dark', hasTouch: true, isMobile: true });
    hostPhoneCtx.setDefaultTimeout(UI_TIMEOUT);
    await hostPhoneCtx.addInitScript(({ token, user }) => {
      if (!localStorage.getItem('audotics.token')) {
        localStorage.setItem('audotics.token', token);
        localStorage.setItem('audotics.user', JSON.stringify(user));
      }
    }, { token: hostToken, user });
    hostPhone = await hostPhoneCtx.newPage();
    watch('host phone', hostPhone);
    await hostPhone.goto(`${hub.base}/#/s/${sessionId}`);
    await waitLive(hostPhone);
    await expectQueue(hostPhone, expected, 'host phone up to date');
    const rows = hostPhone.locator('#queue li.entry');
    const from = center(await rows.nth(2).locator('.handle').boundingBox());
    const to = center(await rows.nth(0).locator('.title').boundingBox());
    await touchDrag(hostPhone, from, { x: from.x, y: to.y - 8 });
    expected.unshift(expected.splice(2, 1)[0]);
    await expectQueue(hostPhone, expected, 'host phone after the finger drag');
    await expectQueue(guest, expected, 'guest sees the finger drag');
  });

  it('Undo after Remove puts the track back where it was', STEP, async () => {
    const name = expected[1];
    const oldId = await hostPhone.locator('#queue li.entry').nth(1).getAttribute('data-entry');
    await rowAction(hostPhone, name, 'Remove');
    await expectQueue(guest, expected.filter((n) => n !== name), 'guest sees it removed');
    const undo = hostPhone.getByRole('button', { name: `Undo removing ${name}` });
    await expectText(hostPhone.locator('#toast'), new RegExp(`Removed “${escapeRe(name)}”`), 'removal confirmed with Undo');
    const undoBox = await undo.boundingBox();
    assert.ok(undoBox.width >= 43.5 && undoBox.height >= 43.5, `Undo is a 44 px target: ${JSON.stringify(undoBox)}`);
    await undo.click();
    await expectQueue(hostPhone, expected, 'back at the same place');
    await expectQueue(guest, expected, 'guest sees it back');
    const newId = await hostPhone.locator('#queue li.entry').nth(1).getAttribute('data-entry');
    assert.notEqual(newId, oldId, 'a new entry (the same track)');
  });

  it('phone layout: 44 px targets, one-line rows, presence one tap away, nothing sideways', STEP, async () => {
    // A name long enough to wrap three times in the old layout.
    const long = 'An Extraordinarily Long Track Title That Goes On and On Through the Night Until the Morning Comes (Extended Remix)';
    await rawOps(host, sessionId, [{
      type: 'add',
      track: { spotifyId: 'longname00000000000001', name: long, artists: ['Someone With a Very Long Artist Name', 'And Friends'], album: 'A Long Album' },
    }]);
    expected.push(long);
    for (const [who, page] of [['host phone', hostPhone], ['guest', guest]]) {
      await page.setViewportSize(PHONE);
      await expectQueue(page, expected, `${who} up to date`);
      for (const tab of ['queue', 'add', 'people']) {
        await openTab(page, tab);
        await sleep(150);
        assert.deepEqual(await smallTargets(page), [], `${who}, ${tab} tab: every control at least 44×44`);
      }
      await openTab(page, 'queue');
      const first = await page.locator('#queue li.entry').first().locator('[aria-haspopup=menu]');
      await first.click();
      assert.deepEqual(await smallTargets(page), [], `${who}: menu items at least 44×44`);
      await page.keyboard.press('Escape');
      const rows = await page.locator('#queue li.entry').evaluateAll((ls) => ls.map((li) => ({
        h: li.getBoundingClientRect().height,
        buttons: li.querySelectorAll('button').length,
        titleLines: Math.round(li.querySelector('.title').getBoundingClientRect().height / parseFloat(getComputedStyle(li.querySelector('.title')).lineHeight)),
      })));
      for (const r of rows) {
        assert.ok(r.h <= 64, `${who}: rows at most 64 px tall (${r.h})`);
        assert.ok(r.buttons <= (who === 'guest' ? 2 : 3), `${who}: few buttons per row (${r.buttons})`);
        assert.equal(r.titleLines, 1, `${who}: titles on one line`);
      }
      // Who is listening: one tap, on the first screen.
      await page.locator('#people-summary').click();
      const people = await page.locator('#people-card').boundingBox();
      assert.ok(people && people.y < PHONE.height / 2, `${who}: the people list is on the first screen (${people && people.y})`);
      await openTab(page, 'queue');
      for (const width of [390, 360]) {
        await page.setViewportSize({ width, height: 740 });
        const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
        assert.ok(overflow <= 0, `${who}: no horizontal scroll at ${width} px (overflow ${overflow}px)`);
      }
      await page.setViewportSize(PHONE);
    }
    await hostPhone.screenshot({ path: path.join(ARTIFACTS, 'host-touch-390x844.png') });
  });

  it('themes follow prefers-color-scheme (light guest phone, dark host)', STEP, async () => {
    const luminance = (page) => page.evaluate(() => {
      const [r, g, b] = getComputedStyle(document.body).backgroundColor.match(/\d+/g).map(Number);
      return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255;
    });
    assert.ok(await luminance(guest) > 0.8, 'light phone gets the light theme');
    assert.ok(await luminance(host) < 0.2, 'dark host gets the dark theme');
    await guest.emulateMedia({ colorScheme: 'dark' });
    assert.ok(await luminance(guest) < 0.2, 'and follows a switch to dark');
    await guest.emulateMedia({ colorScheme: 'light' });
  });

  it('is an installable web app: manifest and icons', STEP, async () => {
    const r = await fetch(`${hub.base}/manifest.webmanifest`);
    const m = await r.json();
    assert.equal(m.display, 'standalone');
    assert.equal(m.start_url, '/');
    for (const size of ['192x192', '512x512']) {
      const icon = m.icons.find((i) => i.sizes === size && i.type === 'image/png');
      assert.ok(icon, `a ${size} PNG icon`);
      const png = Buffer.from(await (await fetch(hub.base + icon.src)).arrayBuffer());
      assert.equal(`${png.readUInt32BE(16)}x${png.readUInt32BE(20)}`, size, `${icon.src} is ${size}`);
    }
    assert.ok(m.icons.some((i) => i.purpose === 'maskable'), 'a maskable icon');
    const cdp = await hostCtx.newCDPSession(host);
    const parsed = await cdp.send('Page.getAppManifest');
    assert.deepEqual(parsed.errors, [], 'Chromium reads the manifest without errors');
    // Playwright's contexts are incognito profiles, where Chromium never
    // offers to install; every other criterion must hold.
    const installable = await cdp.send('Page.getInstallabilityErrors');
    const errors = installable.installabilityErrors.filter((e) => e.errorId !== 'in-incognito');
    assert.deepEqual(errors, [], `installable: ${JSON.stringify(installable.installabilityErrors)}`);
    await cdp.detach();
  });

  it('saves screenshots at 390×844 and 1280×800', STEP, async () => {
    const files = [];
    for (const vp of [PHONE, DESKTOP]) {
      files.push(await shoot(host, 'host', vp));
      files.push(await shoot(guest, 'guest', vp));
    }
    await openTab(guest, 'add');
    await guest.getByLabel('Search the catalog').fill('summer');
    await guest.locator('#form-search').getByRole('button', { name: 'Search' }).click();
    await expectText(guest.locator('#search-status'), /for “summer”/, 'results');
    files.push(await shoot(guest, 'guest-add', PHONE));
    await openTab(guest, 'people');
    files.push(await shoot(guest, 'guest-people', PHONE));
    await openTab(guest, 'queue');
    await openTab(host, 'queue');
    files.push(await shoot(friend, 'friend', PHONE));
    for (const f of files) assert.ok(fs.statSync(f).size > 5000, `${f} written`);
    const docs = path.join(ROOT, 'docs');
    fs.mkdirSync(docs, { recursive: true });
    fs.copyFileSync(path.join(ARTIFACTS, 'host-390x844.png'), path.join(docs, 'screenshot-host-phone.png'));
    fs.copyFileSync(path.join(ARTIFACTS, 'guest-390x844.png'), path.join(docs, 'screenshot-guest-phone-light.png'));
  });

  it('host ends the session → guest sees it ended', STEP, async () => {
    await openTab(host, 'people');
    await host.getByRole('button', { name: 'End session' }).click();
    await host.getByRole('button', { name: 'End for everyone' }).click();
    await expectText(host.locator('#ended-banner'), /This session has ended/, 'host sees ended');
    await guest.locator('#ended-banner').waitFor({ state: 'visible', timeout: UI_TIMEOUT });
    await expectText(guest.locator('#conn-badge'), /Ended/, 'guest badge ended');
    assert.equal(await guest.locator('#panel-add').isVisible(), false, 'no adding after the end');
    await expectQueue(guest, expected, 'the queue stays as it was left');
    await shoot(guest, 'guest-ended', PHONE);
  });

  it('reopening an ended session shows it as it was left', STEP, async () => {
    for (const [who, page, role] of [['guest', guest, 'Guest'], ['host', host, 'Host'], ['friend', friend, 'Guest']]) {
      await page.reload();
      await expectText(page.locator('#session-title'), /^Friday listening party$/, `${who}: the session's name`);
      await expectText(page.locator('#role-badge'), new RegExp(`^${role}$`), `${who}: the role`);
      await expectQueue(page, expected, `${who}: the queue as it was left`);
      await expectText(page.locator('#ended-banner'), /This session has ended\. The queue below is how it was left/, `${who}: the banner`);
      await expectText(page.locator('#conn-badge'), /^Ended$/, `${who}: the badge`);
      const people = await page.locator('#people li').allTextContents();
      assert.ok(people.some((p) => /Hana Host/.test(p)) && people.some((p) => /Gus Guest/.test(p)), `${who}: who was there: ${people}`);
      await expectText(page.locator('#people-count'), /^\(\d+\)$/, `${who}: a count of people, not "0 online"`);
      assert.equal(await page.locator('#queue-empty').isVisible(), false, `${who}: not "the queue is empty"`);
    }
    await shoot(guest, 'guest-reopened-ended', PHONE);
    assert.deepEqual(consoleErrors, [], 'no uncaught page errors');
  });
});

