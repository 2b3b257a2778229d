// Album covers. The catalog rarely has an image, so a cover is drawn from
// the album's name: two hues and a direction from a hash of the name, with
// its initials on top — the same album gets the same cover on every
// screen. A track's `coverUrl` (this hub's, or https: the page's CSP allows
// those, without a referrer) is laid over it, and dropped if it fails.

import { el, hueOf, initials } from './dom.js';

/** Hash → {hue, hue2, angle}: stable for a name. */
export function coverColors(name) {
  const text = String(name || '♪');
  const hue = hueOf(text);
  const h2 = hueOf(`${text}·`);
  return { hue, hue2: (hue + 40 + (h2 % 100)) % 360, angle: 90 + (h2 % 180) };
}

/**
 * A cover for `track` (its `coverUrl` when the page may load it, else one
 * drawn from its album), `size` a class: `sm`, `lg` or `xl`.
 */
export function coverArt(track, size = 'lg') {
  const album = (track && (track.album || track.name)) || '♪';
  const { hue, hue2, angle } = coverColors(album);
  const box = el('span', { class: `cover-art cover-${size}`, 'aria-hidden': 'true' },
    el('span', { class: 'cover-initials' }, initials(album)));
  box.style.setProperty('--hue', String(hue));
  box.style.setProperty('--hue2', String(hue2));
  box.style.setProperty('--angle', `${angle}deg`);
  const url = track && track.coverUrl;
  if (url && (url.startsWith('/') || url.startsWith(location.origin) || url.startsWith('https://'))) {
    const img = el('img', { src: url, alt: '', loading: 'lazy' });
    img.addEventListener('error', () => img.remove());
    box.append(img);
  }
  return box;
}
