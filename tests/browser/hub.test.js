// Browser tests of the Audotics Hub web client: a real hub (private Postgres,
// demo catalog) and headless Debian Chromium driven by playwright-core, with
// two browser contexts (host and guest) walking the scenarios.
//
// Run: tests/browser/run.sh  (or `node --test tests/browser/` with the hub
// built at target/debug/audotics-hub, or HUB_BIN pointing at a binary).

import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..');
const HUB_BIN = process.env.HUB_BIN || path.join(ROOT, 'target', 'debug', 'audotics-hub');
const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';
const ARTIFACTS = path.join(HERE, 'artifacts');
const STEP = { timeout: 90_000 };
const UI_TIMEOUT = 15_000;

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 800 };

// ------------------------------------------------------------------ the hub

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

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
      'serve', '--bind', `127.0.0.1:${this.port}`, '--data-dir', this.dataDir, '--demo',
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

// ------------------------------------------------------------------ page helpers

async function titles(page) {
  return page.locator('#queue li.entry .title').allTextContents();
}

/** Wait until the page's queue titles equal `expected` (or the timeout). */
async function expectQueue(page, expected, what) {
  const deadline = Date.now() + UI_TIMEOUT;
  let seen;
  while (Date.now() < deadline) {
    seen = await titles(page);
    if (JSON.stringify(seen) === JSON.stringify(expected)) return;
    await sleep(100);
  }
  assert.deepEqual(seen, expected, `${what}: queue differs`);
}

async function expectText(locator, re, what) {
  await locator.first().waitFor({ state: 'attached', timeout: UI_TIMEOUT }).catch(() => {});
  const deadline = Date.now() + UI_TIMEOUT;
  let text = '';
  while (Date.now() < deadline) {
    text = (await locator.allTextContents()).join(' | ');
    if (re.test(text)) return text;
    await sleep(100);
  }
  assert.match(text, re, what);
  return text;
}

async function signUp(page, name, email) {
  await page.getByRole('tab', { name: 'Create account' }).click();
  await page.getByLabel('Display name').fill(name);
  await page.locator('#signup-email').fill(email);
  await page.locator('#signup-password').fill('correct horse battery');
  await page.locator('#form-signup').getByRole('button', { name: 'Create account' }).click();
}

async function waitLive(page) {
  await expectText(page.locator('#conn-badge'), /^Live$/, 'connection badge shows Live');
}

async function addFromSearch(page, query, nth) {
  await page.getByLabel('Search the catalog').fill(query);
  await page.locator('#form-search').getByRole('button', { name: 'Search' }).click();
  const buttons = page.locator('#results button[data-track]');
  await buttons.nth(nth).waitFor({ timeout: UI_TIMEOUT });
  const name = await buttons.nth(nth).getAttribute('data-name');
  await buttons.nth(nth).click();
  return name;
}

async function shoot(page, name, viewport) {
  await page.setViewportSize(viewport);
  await page.evaluate(() => {
    document.activeElement?.blur();
    document.querySelector('#toasts')?.replaceChildren(); // transient; would cover the view
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
  let browser;
  let hostCtx;
  let guestCtx;
  let host;
  let guest;
  let sessionId;
  let shareLink;
  let hostToken;
  let guestToken;
  const expected = []; // the queue titles we expect, in order
  const consoleErrors = [];

  before(async () => {
    assert.ok(fs.existsSync(HUB_BIN), `hub binary not found at ${HUB_BIN}: build it (cargo build --bin audotics-hub) or set HUB_BIN`);
    assert.ok(fs.existsSync(CHROMIUM), `${CHROMIUM} not found: apt-get install -y chromium`);
    fs.rmSync(ARTIFACTS, { recursive: true, force: true });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'audotics-browser-'));
    hub = new Hub(path.join(tmp, 'data'), await freePort());
    await hub.start();
    // Playwright gives each launch a fresh temporary profile (user data dir)
    // of its own and removes it on close; it refuses a --user-data-dir arg.
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      timeout: 60_000,
      args: [
        '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
      ],
    });
    hostCtx = await browser.newContext({ viewport: PHONE });
    guestCtx = await browser.newContext({ viewport: PHONE });
    for (const ctx of [hostCtx, guestCtx]) {
      ctx.setDefaultTimeout(UI_TIMEOUT);
      ctx.setDefaultNavigationTimeout(30_000);
    }
    host = await hostCtx.newPage();
    guest = await guestCtx.newPage();
    for (const [who, page] of [['host', host], ['guest', guest]]) {
      page.on('pageerror', (e) => consoleErrors.push(`${who}: ${e.message}`));
    }
  });

  after(async () => {
    await browser?.close().catch(() => {});
    await hub?.kill('SIGTERM').catch((e) => console.error(e.message));
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('serves the client at / with content types', STEP, async () => {
    for (const [p, type] of [['/', 'text/html'], ['/app.js', 'text/javascript'], ['/style.css', 'text/css'], ['/vendor/qrcode.mjs', 'text/javascript']]) {
      const r = await fetch(hub.base + p);
      assert.equal(r.status, 200, p);
      assert.match(r.headers.get('content-type'), new RegExp(type), p);
      assert.ok(r.headers.get('etag'), `${p} has an ETag`);
    }
  });

  it('host signs up, sees a hub error in words, and creates a session', STEP, async () => {
    await host.goto(hub.base + '/');
    // A wrong password is refused by the hub; the page says so in words.
    await host.locator('#signin-email').fill('nobody@example.com');
    await host.locator('#signin-password').fill('wrong-password');
    await host.locator('#form-signin').getByRole('button', { name: 'Sign in' }).click();
    await expectText(host.locator('#errors'), /Sign-in failed: wrong email or password/, 'sign-in error shown');
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
    // Presence: each sees the other listening.
    await expectText(host.locator('#people li.online'), /Gus Guest/, 'host sees the guest listening');
    await expectText(guest.locator('#people li.online'), /Hana Host/, 'guest sees the host listening');
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
    await guest.getByLabel('Or paste a Spotify track link or ID').fill('not a link');
    await guest.locator('#form-spotify').getByRole('button', { name: 'Add' }).click();
    await expectText(guest.locator('#errors'), /not a Spotify track link or ID/, 'bad paste explained');
    await guest.getByLabel('Or paste a Spotify track link or ID').fill('https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC?si=abc');
    await guest.locator('#form-spotify').getByRole('button', { name: 'Add' }).click();
    expected.push('Spotify track 4uLU6hMCjMI75M1A2tKUQC');
    await expectQueue(host, expected, 'host sees the pasted track');
  });

  it('guest has no reorder controls, and the hub refuses a forged reorder', STEP, async () => {
    assert.equal(await guest.locator('#queue button[data-action=up], #queue button[data-action=down]').count(), 0, 'no move buttons for the guest');
    assert.equal(await guest.locator('#queue li[draggable=true]').count(), 0, 'nothing draggable for the guest');
    // Remove only on own entries.
    assert.equal(await guest.locator('#queue button[data-action=remove]').count(), 2, 'guest can remove its 2 own entries only');
    // Forge a reorder on a raw WebSocket with the guest's token.
    const firstEntry = await host.locator('#queue li.entry').first().getAttribute('data-entry');
    const answer = await guest.evaluate(async ({ sessionId, token, entryId }) => {
      const ws = new WebSocket(`ws://${location.host}/v1/ws`);
      const frames = [];
      return await new Promise((resolve) => {
        const t = setTimeout(() => resolve({ timeout: true, frames }), 10000);
        ws.onopen = () => ws.send(JSON.stringify({ type: 'join', sessionId, token }));
        ws.onmessage = (ev) => {
          const m = JSON.parse(ev.data);
          frames.push(m.type);
          if (m.type === 'snapshot') {
            ws.send(JSON.stringify({ type: 'reorder', req: 'forged-1', entryId, toIndex: 4 }));
          } else if (m.type === 'error' || m.type === 'ack') {
            clearTimeout(t);
            ws.close();
            resolve(m);
          }
        };
      });
    }, { sessionId, token: guestToken, entryId: firstEntry });
    assert.equal(answer.type, 'error', JSON.stringify(answer));
    assert.equal(answer.code, 'forbidden');
    assert.equal(answer.req, 'forged-1');
    await sleep(300);
    await expectQueue(host, expected, 'host queue unchanged by the forged reorder');
    await expectQueue(guest, expected, 'guest queue unchanged by the forged reorder');
  });

  it('host drags to reorder → guest sees the new order', STEP, async () => {
    assert.ok(await host.locator('#queue li[draggable=true]').count() === expected.length);
    // Drag the guest's search pick (index 3) to the top.
    // A real mouse drag (HTML5 drag and drop): press on the 4th entry, move
    // in steps over the 1st, release. Both must be on screen.
    await host.evaluate(() => window.scrollTo(0, 0));
    const entries = host.locator('#queue li.entry');
    const from = await entries.nth(3).locator('.pos').boundingBox();
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

  it('host reorders by keyboard (Move down) → guest sees it; focus follows', STEP, async () => {
    const name = expected[0];
    const down = host.getByRole('button', { name: `Move ${name} down` });
    await down.focus();
    await host.keyboard.press('Enter');
    [expected[0], expected[1]] = [expected[1], expected[0]];
    await expectQueue(host, expected, 'host after keyboard move');
    await expectQueue(guest, expected, 'guest sees the keyboard move');
    const focused = await host.evaluate(() => document.activeElement?.getAttribute('aria-label'));
    assert.equal(focused, `Move ${name} down`, 'focus stays on the moved entry');
  });

  it('reactions show up for the other user', STEP, async () => {
    await guest.getByRole('button', { name: `Like ${expected[0]}` }).click();
    await expectText(host.locator('#feed li'), new RegExp(`Gus Guest liked “${escapeRe(expected[0])}”`), 'host sees the like');
    await expectText(guest.locator('#feed li'), new RegExp(`You liked “${escapeRe(expected[0])}”`), 'guest sees its own like');
    await host.getByRole('button', { name: `Vote to skip ${expected[1]}` }).click();
    await expectText(guest.locator('#feed li'), new RegExp(`Hana Host wants to skip “${escapeRe(expected[1])}”`), 'guest sees the skip');
  });

  it('guest removes its own entry → host sees it gone', STEP, async () => {
    const name = 'Spotify track 4uLU6hMCjMI75M1A2tKUQC';
    await guest.getByRole('button', { name: `Remove ${name}` }).click();
    expected.splice(expected.indexOf(name), 1);
    await expectQueue(host, expected, 'host after the guest removed');
    await expectQueue(guest, expected, 'guest after removing');
  });

  it('hub killed (SIGKILL) and restarted → both pages resume without a reload', STEP, async () => {
    await host.evaluate(() => { window.__noReload = 'host'; });
    await guest.evaluate(() => { window.__noReload = 'guest'; });
    const before = await host.evaluate(() => window.audotics.version);
    await hub.kill('SIGKILL');
    await expectText(host.locator('#status'), /Reconnecting…/, 'host shows reconnecting');
    await expectText(guest.locator('#status'), /Reconnecting…/, 'guest shows reconnecting');
    await expectText(guest.locator('#conn-badge'), /Reconnecting…/, 'guest badge shows reconnecting');
    await hub.start();
    await waitLive(host);
    await waitLive(guest);
    assert.equal(await host.evaluate(() => window.__noReload), 'host', 'host page was not reloaded');
    assert.equal(await guest.evaluate(() => window.__noReload), 'guest', 'guest page was not reloaded');
    await expectQueue(host, expected, 'host queue after restart');
    await expectQueue(guest, expected, 'guest queue after restart');
    assert.equal(await host.evaluate(() => window.audotics.version), before, 'same version after restart');
    // The hub's own view agrees.
    const snap = await hub.api('GET', `/sessions/${sessionId}`, hostToken);
    assert.equal(snap.status, 200);
    assert.deepEqual(snap.data.queue.map((e) => e.track.name), expected, 'hub snapshot = pages');
    assert.deepEqual(await host.evaluate(() => window.audotics.queue), snap.data.queue.map((e) => e.entryId));
    assert.deepEqual(await guest.evaluate(() => window.audotics.queue), snap.data.queue.map((e) => e.entryId));
    // And the session goes on: a change after the restart reaches the guest.
    await host.getByRole('button', { name: `Move ${expected[1]} up` }).click();
    [expected[0], expected[1]] = [expected[1], expected[0]];
    await expectQueue(guest, expected, 'guest sees a move made after the restart');
    await expectText(host.locator('#people li.online'), /Gus Guest/, 'presence back after restart');
  });

  it('saves screenshots of host and guest at 390×844 and 1280×800', STEP, async () => {
    const files = [];
    for (const vp of [PHONE, DESKTOP]) {
      files.push(await shoot(host, 'host', vp));
      files.push(await shoot(guest, 'guest', vp));
    }
    for (const f of files) assert.ok(fs.statSync(f).size > 5000, `${f} written`);
    // Nothing overflows sideways on a phone.
    await host.setViewportSize({ width: 360, height: 740 });
    const overflow = await host.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    assert.ok(overflow <= 0, `no horizontal scroll at 360 px (overflow ${overflow}px)`);
    await host.setViewportSize(PHONE);
    fs.mkdirSync(path.join(ROOT, 'docs'), { recursive: true });
    fs.copyFileSync(path.join(ARTIFACTS, 'host-390x844.png'), path.join(ROOT, 'docs', 'screenshot-host-phone.png'));
  });

  it('host ends the session → guest sees it ended', STEP, async () => {
    await host.getByRole('button', { name: 'End session' }).click();
    await host.getByRole('button', { name: 'End for everyone' }).click();
    await expectText(host.locator('#ended-banner'), /This session has ended/, 'host sees ended');
    await guest.locator('#ended-banner').waitFor({ state: 'visible', timeout: UI_TIMEOUT });
    await expectText(guest.locator('#conn-badge'), /Ended/, 'guest badge ended');
    assert.equal(await guest.locator('#add-card').isVisible(), false, 'no adding after the end');
    await shoot(guest, 'guest-ended', PHONE);
    assert.deepEqual(consoleErrors, [], 'no uncaught page errors');
  });
});

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
