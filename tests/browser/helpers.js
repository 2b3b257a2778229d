// What both browser suites use: a free port, waiting for text or a
// condition in the page, the phone tabs, ops on a raw WebSocket of the
// page's user, the 44 px target check, and escaping for RegExp.

import assert from 'node:assert/strict';
import net from 'node:net';

export const UI_TIMEOUT = 15_000;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export function freePort() {
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

export async function titles(page) {
  return page.locator('#queue li.entry .title').allTextContents();
}

export async function expectText(locator, re, what, timeout = UI_TIMEOUT) {
  await locator.first().waitFor({ state: 'attached', timeout }).catch(() => {});
  const deadline = Date.now() + timeout;
  let text = '';
  while (Date.now() < deadline) {
    text = (await locator.allTextContents()).join(' | ');
    if (re.test(text)) return text;
    await sleep(100);
  }
  assert.match(text, re, what);
  return text;
}

export async function waitFor(fn, what, timeout = UI_TIMEOUT) {
  const deadline = Date.now() + timeout;
  let last;
  while (Date.now() < deadline) {
    last = await fn();
    if (last) return last;
    await sleep(100);
  }
  assert.fail(`${what} (last: ${JSON.stringify(last)})`);
}

/** On a phone the session's parts are tabs; on a wide screen they are all shown. */
export async function openTab(page, name) {
  const tab = page.locator(`#tab-${name}`);
  if (await tab.isVisible()) await tab.click();
}

/** Ops on a raw WebSocket of the page's user: [{type: 'add', trackId}, …]; resolves when all are acked. */
export async function rawOps(page, sessionId, ops) {
  return page.evaluate(async ({ sessionId, ops }) => {
    const token = localStorage.getItem('audotics.token');
    const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/v1/ws`);
    const answers = [];
    return await new Promise((resolve, reject) => {
      const t = setTimeout(() => reject(new Error(`raw ops timed out: ${JSON.stringify(answers)}`)), 10000);
      ws.onopen = () => ws.send(JSON.stringify({ type: 'join', sessionId, token }));
      ws.onmessage = (ev) => {
        const m = JSON.parse(ev.data);
        if (m.type === 'snapshot') {
          ops.forEach((op, i) => ws.send(JSON.stringify({ ...op, req: `raw-${Date.now()}-${i}` })));
        } else if (m.type === 'ack' || m.type === 'error') {
          answers.push(m);
          if (answers.length === ops.length) {
            clearTimeout(t);
            ws.send(JSON.stringify({ type: 'leave' }));
            resolve(answers);
          }
        }
      };
    });
  }, { sessionId, ops });
}

/** Every control on the page smaller than 44×44 CSS px, as "tag#id label w×h". */
export async function smallTargets(page) {
  return page.evaluate(() => {
    const sel = 'a[href], button, input, select, textarea, summary, [role=tab], [role=menuitem], [tabindex]:not([tabindex="-1"])';
    const small = [];
    for (const e of document.querySelectorAll(sel)) {
      const r = e.getBoundingClientRect();
      if (r.width === 0 || r.height === 0 || getComputedStyle(e).visibility === 'hidden') continue;
      if (r.right <= 0 || r.left >= window.innerWidth) continue; // parked off screen (the skip link)
      if (r.width < 43.5 || r.height < 43.5) {
        const label = e.getAttribute('aria-label') || e.textContent.trim().slice(0, 30);
        small.push(`${e.tagName.toLowerCase()}${e.id ? `#${e.id}` : ''} “${label}” ${Math.round(r.width)}×${Math.round(r.height)}`);
      }
    }
    return small;
  });
}

export function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
