// Small DOM helpers every view uses, so no view hand-builds elements its own way.

export const $ = (sel, root = document) => root.querySelector(sel);

/**
 * Create an element. `props`: `class`, `dataset`, `aria-*`/`role` (as
 * attributes), anything else as a property (`textContent`, `type`, …).
 */
export function el(tag, props = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v === undefined || v === null) continue;
    if (k === 'class') e.className = v;
    else if (k === 'dataset') Object.assign(e.dataset, v);
    else if (k.startsWith('aria-') || k === 'role') e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
}

/** Show a form's own error line (the one under its fields), or hide it. */
export function formError(form, text) {
  const p = form.querySelector('.form-error');
  if (!p) return;
  p.textContent = text || '';
  p.hidden = !text;
}

/** Run `fn` with the form's submit button disabled. */
export async function withBusy(form, fn) {
  const button = form.querySelector('button[type=submit]');
  if (button) button.disabled = true;
  try {
    await fn();
  } finally {
    if (button) button.disabled = false;
  }
}

/** A stable hue (0–359) for a text: covers and avatars are drawn from names. */
export function hueOf(text) {
  let h = 0;
  for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
  return h % 360;
}

/** Up to two initials of a name ("Velvet River" → "VR"). */
export function initials(text) {
  const words = String(text).replace(/\(.*?\)/g, ' ').split(/\s+/).filter((w) => /\p{L}|\p{N}/u.test(w));
  const picked = words.length > 1 ? [words[0], words[words.length - 1]] : words.slice(0, 1);
  return picked.map((w) => [...w.replace(/^[^\p{L}\p{N}]+/u, '')][0] || '').join('').toUpperCase() || '♪';
}

/** A cover tile drawn from an album's name (the catalog has no images yet). */
export function coverTile(name) {
  const c = el('span', { class: 'cover', 'aria-hidden': 'true' }, initials(name));
  c.style.setProperty('--hue', String(hueOf(name)));
  return c;
}
