// Adding tracks: search the catalog (as you type, newest query wins) or
// paste a Spotify link. Problems are said right here, where the user is
// looking — a failed search clears the previous query's results instead of
// leaving them as if they answered the new one — and each Add button shows
// what became of its track (adding, waiting for the connection, added).

import { api } from './api.js';
import { $, coverTile, el } from './dom.js';
import { plural, problem, quoted } from './messages.js';

const DEBOUNCE_MS = 300;

let hooks = null;
let seq = 0;
let inflight = null; // AbortController of the search under way
let timer = null;
let lastQuery = '';

/** Tracks seen in results, by Spotify id: a pasted id of a known track is queued by its catalog id. */
const known = new Map();

/**
 * @param {object} h
 * @param {(ref: {trackId?, track?, name}) => Promise<{ok: boolean}>} h.add
 * @param {() => object[]} h.queuedTracks the tracks in the queue now
 * @param {() => boolean} h.live is the connection live (else adds wait)
 */
export function initSearch(h) {
  hooks = h;
  const input = $('#search-q');
  input.addEventListener('input', () => {
    clearTimeout(timer);
    const q = input.value.trim();
    timer = setTimeout(() => search(q), DEBOUNCE_MS);
  });
  $('#form-search').addEventListener('submit', (e) => {
    e.preventDefault();
    clearTimeout(timer);
    search(input.value.trim());
  });
  $('#search-retry').addEventListener('click', () => search(lastQuery));
  $('#results').addEventListener('click', (e) => {
    const b = e.target.closest('button[data-track]');
    if (b) addFromResult(b);
  });
  $('#form-spotify').addEventListener('submit', (e) => {
    e.preventDefault();
    addPasted();
  });
}

/** A new session page: nothing from the last one. */
export function resetSearch() {
  clearTimeout(timer);
  if (inflight) inflight.abort();
  $('#results').replaceChildren();
  $('#search-q').value = '';
  $('#spotify-input').value = '';
  status('');
  spotifyStatus(null);
}

function status(text, { error = false, retry = false } = {}) {
  const box = $('#search-status');
  box.querySelector('.search-text').textContent = text;
  box.dataset.kind = error ? 'error' : '';
  $('#search-retry').hidden = !retry;
}

async function search(q) {
  const mine = ++seq;
  lastQuery = q;
  if (inflight) inflight.abort();
  if (!q) {
    $('#results').replaceChildren();
    status('');
    return;
  }
  const ctl = new AbortController();
  inflight = ctl;
  status('Searching…');
  try {
    const r = await api('GET', `/tracks?q=${encodeURIComponent(q)}&limit=20`, undefined, { signal: ctl.signal });
    if (mine !== seq) return;
    const tracks = r.tracks || [];
    status(tracks.length
      ? `${plural(tracks.length, 'result')} for ${quoted(q)}.`
      : `No tracks match ${quoted(q)}. Try a word like “heart”, “night” or “summer”.`);
    $('#results').replaceChildren(...tracks.map(resultRow));
  } catch (err) {
    if (mine !== seq || ctl.signal.aborted) return;
    // Results of an earlier query must not pass for this one's.
    $('#results').replaceChildren();
    status(`Search didn't work. ${problem(err)}`, { error: true, retry: true });
  } finally {
    if (inflight === ctl) inflight = null;
  }
}

function resultRow(t) {
  known.set(t.spotifyId, t);
  const artists = t.artists.join(', ');
  return el('li', { class: 'result' },
    coverTile(t.album || t.name),
    el('div', { class: 'info' },
      el('span', { class: 'title' }, t.name),
      el('span', { class: 'sub' }, `${artists} · ${t.album}`)),
    el('button', {
      type: 'button',
      class: 'btn btn-primary add-btn',
      textContent: 'Add',
      dataset: { track: t.id, name: t.name },
      'aria-label': `Add ${t.name} by ${artists}`,
    }));
}

async function addFromResult(b) {
  const name = b.dataset.name;
  b.dataset.state = 'adding';
  b.textContent = hooks.live() ? 'Adding…' : 'Waiting…';
  const { ok } = await hooks.add({ trackId: b.dataset.track, name });
  b.dataset.state = ok ? 'added' : '';
  b.textContent = ok ? 'Added ✓' : 'Add';
  if (ok) {
    setTimeout(() => {
      if (b.dataset.state === 'added') {
        b.dataset.state = '';
        b.textContent = 'Add';
      }
    }, 2500);
  }
}

/** A Spotify track id from a link, a URI or a bare id; null if none. */
export function parseSpotify(input) {
  const s = input.trim();
  let m = s.match(/^https?:\/\/open\.spotify\.com\/(?:intl-[a-z-]+\/)?track\/([A-Za-z0-9]{22})(?:[/?#].*)?$/);
  if (m) return m[1];
  m = s.match(/^spotify:track:([A-Za-z0-9]{22})$/);
  if (m) return m[1];
  m = s.match(/^[A-Za-z0-9]{22}$/);
  return m ? m[0] : null;
}

function spotifyStatus(text, error = false) {
  const p = $('#spotify-status');
  p.textContent = text || 'Tracks not in the catalog are added with placeholder details ("Spotify track …").';
  p.dataset.kind = error ? 'error' : '';
}

async function addPasted() {
  const input = $('#spotify-input');
  const id = parseSpotify(input.value);
  if (!id) {
    spotifyStatus("That's not a Spotify track link or ID. Use https://open.spotify.com/track/…, spotify:track:… or the 22-character ID.", true);
    input.focus();
    return;
  }
  let track = known.get(id) || hooks.queuedTracks().find((t) => t.spotifyId === id);
  if (!track) {
    // A track the catalog already has keeps its real details.
    try {
      const found = await api('GET', `/tracks?spotifyId=${encodeURIComponent(id)}`);
      track = found && found.tracks && found.tracks[0];
    } catch (err) {
      spotifyStatus(`Couldn't look that track up. ${problem(err)}`, true);
      return;
    }
  }
  input.value = '';
  spotifyStatus(null);
  if (track) {
    hooks.add({ trackId: track.id, name: track.name });
  } else {
    const name = `Spotify track ${id}`;
    hooks.add({ track: { spotifyId: id, name, artists: ['Unknown artist'], album: 'Unknown album' }, name });
  }
}
