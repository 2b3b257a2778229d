// Inviting people: the session link, Copy / Share, and a QR code drawn
// locally as SVG. The link is this page's own address, so when that address
// is this computer only (127.0.0.1, localhost — the hub's default bind) the
// card says plainly that phones cannot open it, and what to do instead.

import { api } from './api.js';
import { $ } from './dom.js';
import qrcode from '../vendor/qrcode.mjs';

const SVG = 'http://www.w3.org/2000/svg';

/** Is `hostname` reachable only from this computer? */
export function isLoopback(hostname) {
  const h = hostname.replace(/^\[|\]$/g, '').toLowerCase();
  return h === 'localhost' || h.endsWith('.localhost') || h === '::1' || /^127\./.test(h) || h === '0.0.0.0';
}

export function initInvite() {
  $('#copy-link').addEventListener('click', copyLink);
  $('#share-native').addEventListener('click', () => {
    navigator.share({ title: document.title, url: $('#share-link').value }).catch(() => {});
  });
}

export function showInvite(sessionId) {
  const link = `${location.origin}/#/s/${sessionId}`;
  $('#share-link').value = link;
  $('#share-native').hidden = typeof navigator.share !== 'function';
  const local = isLoopback(location.hostname);
  const warning = $('#invite-warning');
  warning.hidden = !local;
  if (local) {
    const port = location.port || (location.protocol === 'https:' ? '443' : '80');
    warning.textContent = `Phones can't open this link or its QR code: it points to this computer (${location.hostname}), not to your network. `
      + `To invite people nearby, start the hub with --bind 0.0.0.0:${port} and open this page at your computer's network address, like http://192.168.1.20:${port}.`;
  }
  $('#qr').classList.toggle('qr-local', local);
  $('#qr-caption').textContent = local ? 'Works only on this computer' : 'Scan to join';
  drawQr($('#qr'), link);
  $('#code-box').hidden = true;
  loadCode(sessionId);
}

/** "CDFGHJ" → "CDF GHJ": easier to read out across a room. */
export function spacedCode(code) {
  return code.length === 6 ? `${code.slice(0, 3)} ${code.slice(3)}` : code;
}

/** The session's join code: shown big, its /j/CODE link in the QR, and the TV view's link. */
async function loadCode(sessionId) {
  let r;
  try {
    r = await api('GET', `/sessions/${sessionId}/code`);
  } catch (e) {
    console.info('audotics: no join code', e.status);
    return;
  }
  if ($('#share-link').value !== `${location.origin}/#/s/${sessionId}`) return; // another session since
  const link = `${location.origin}/j/${r.code}`;
  $('#join-code').textContent = spacedCode(r.code);
  $('#join-code').setAttribute('aria-label', `Join code ${r.code.split('').join(' ')}`);
  $('#code-where').textContent = `${location.host}/j`;
  $('#tv-link').href = `/tv/${r.code}`;
  $('#code-box').hidden = false;
  $('#qr').setAttribute('aria-label', `QR code of the join link ${link}`);
  drawQr($('#qr'), link);
}

async function copyLink() {
  const input = $('#share-link');
  const button = $('#copy-link');
  try {
    await navigator.clipboard.writeText(input.value);
    button.textContent = 'Copied ✓';
  } catch {
    // No clipboard access (not a secure context, or refused): select it.
    input.focus();
    input.select();
    button.textContent = 'Selected: copy it';
  }
  setTimeout(() => { button.textContent = 'Copy'; }, 2500);
}

/** Draw `text` as a QR code (SVG, dark on white) into `box`. */
export function drawQr(box, text) {
  try {
    const qr = qrcode(0, 'M');
    qr.addData(text);
    qr.make();
    const n = qr.getModuleCount();
    const quiet = 4;
    const size = n + quiet * 2;
    let d = '';
    for (let r = 0; r < n; r += 1) {
      for (let c = 0; c < n; c += 1) {
        if (qr.isDark(r, c)) d += `M${c + quiet} ${r + quiet}h1v1h-1z`;
      }
    }
    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${size} ${size}`);
    svg.setAttribute('shape-rendering', 'crispEdges');
    svg.setAttribute('aria-hidden', 'true');
    // Always dark on white, in both themes: that is what scanners read.
    const bg = document.createElementNS(SVG, 'rect');
    bg.setAttribute('width', String(size));
    bg.setAttribute('height', String(size));
    bg.setAttribute('fill', '#ffffff');
    const path = document.createElementNS(SVG, 'path');
    path.setAttribute('d', d);
    path.setAttribute('fill', '#000000');
    svg.append(bg, path);
    box.replaceChildren(svg);
  } catch (e) {
    console.warn('audotics: QR code not drawn', e);
    box.replaceChildren();
    if (box.id === 'qr') $('#qr-caption').textContent = "The QR code couldn't be drawn; share the link instead.";
  }
}
