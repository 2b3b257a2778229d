// Now playing, on top of the queue: the cover, title and artists, a
// progress bar that follows the hub's `nowPlaying` (its `positionMs` at the
// hub's time `at`, advanced locally while playing and corrected by the
// hub's clock from pongs), and the controls the member may use: play/pause
// and seek for hosts, next for hosts (and guests when allowed), and the
// room's skip vote for everyone with the count against the threshold.

import { coverArt } from './cover.js';
import { $, el } from './dom.js';
import { plural } from './messages.js';

let actions = null;
let shown = null; // the Session last rendered
let timer = null;
let seeking = false;
let coverFor = null; // the entry whose cover is drawn

/** mm:ss */
export function clock(ms) {
  const s = Math.max(0, Math.floor(ms / 1000));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

/** @param {object} a play(), pause(), next(), seek(ms), skipVote(up) */
export function initNowPlaying(a) {
  actions = a;
  $('#np-play').addEventListener('click', () => {
    const s = shown && shown.state;
    if (!s) return;
    if (s.party.nowPlaying && s.party.nowPlaying.state === 'playing') actions.pause();
    else actions.play();
  });
  $('#np-next').addEventListener('click', () => actions.next());
  $('#np-skip').addEventListener('click', () => {
    const s = shown && shown.state;
    if (s) actions.skipVote(!s.party.skipVotes.includes(s.me));
  });
  const seek = $('#np-seek');
  seek.addEventListener('input', () => {
    seeking = true;
    paint(Number(seek.value));
  });
  seek.addEventListener('change', () => {
    seeking = false;
    actions.seek(Number(seek.value));
  });
  seek.addEventListener('blur', () => { seeking = false; });
}

export function stopNowPlaying() {
  clearInterval(timer);
  timer = null;
  shown = null;
}

/** Render what plays for `session`; ticks while it plays. */
export function renderNowPlaying(session) {
  shown = session;
  const s = session.state;
  const card = $('#now-playing');
  card.hidden = !s.open;
  if (!s.open) {
    clearInterval(timer);
    timer = null;
    return;
  }
  const np = s.party.nowPlaying;
  card.dataset.state = np ? np.state : 'idle';
  $('#np-empty').hidden = Boolean(np);
  $('#np-track').hidden = !np;
  const play = $('#np-play');
  play.hidden = !s.canControl;
  const playing = np && np.state === 'playing';
  play.dataset.playing = String(Boolean(playing));
  play.setAttribute('aria-label', playing ? 'Pause' : np ? 'Play' : 'Start playing the queue');
  play.disabled = !np && !s.queue.length;
  // Nothing playing: play starts the queue; next has nothing to skip.
  $('#np-next').hidden = !s.canSkip || !np;
  const skip = $('#np-skip');
  skip.hidden = !np;
  if (np) {
    if (coverFor !== np.entryId) {
      coverFor = np.entryId;
      $('#np-cover').replaceChildren(coverArt(np.track, 'xl'));
    }
    $('#np-title').textContent = np.track.name;
    $('#np-artists').textContent = (np.track.artists || []).join(', ');
    $('#np-label').textContent = `${playing ? 'Now playing' : 'Paused'} · added by ${s.nameOf(np.addedBy)}`;
    const votes = s.party.skipVotes.length;
    const need = s.skipNeeded();
    const mine = s.party.skipVotes.includes(s.me);
    skip.setAttribute('aria-pressed', String(mine));
    $('#np-skip-text').textContent = mine ? 'Voted to skip' : 'Vote to skip';
    $('#np-skip-count').textContent = `${votes}/${need}`;
    skip.setAttribute('aria-label', `${mine ? 'Take back your skip vote' : 'Vote to skip'}: ${votes} of ${plural(need, 'vote')} needed`);
    const seek = $('#np-seek');
    seek.hidden = !s.canControl || !np.track.durationMs;
    seek.max = String(np.track.durationMs || 0);
  } else {
    coverFor = null;
    $('#np-empty-text').textContent = s.canControl
      ? s.queue.length ? 'Nothing is playing. Start the party when everyone is ready.' : 'Nothing is playing. Add tracks, then press play.'
      : 'Nothing is playing yet. The host starts the party.';
  }
  tick();
  clearInterval(timer);
  timer = playing ? setInterval(tick, 250) : null;
}

function tick() {
  if (!shown || seeking) return;
  const s = shown.state;
  if (!s.party.nowPlaying) return;
  paint(s.positionAt(shown.hubNow()));
}

function paint(pos) {
  const s = shown.state;
  const np = s.party.nowPlaying;
  if (!np) return;
  const d = np.track.durationMs || 0;
  const bar = $('#np-bar');
  bar.dataset.positionMs = String(Math.round(pos));
  bar.setAttribute('aria-valuenow', String(Math.floor(pos / 1000)));
  bar.setAttribute('aria-valuemax', String(Math.floor(d / 1000)));
  bar.setAttribute('aria-valuetext', d ? `${clock(pos)} of ${clock(d)}` : clock(pos));
  $('#np-fill').style.width = d ? `${Math.min(100, (pos / d) * 100).toFixed(2)}%` : '0%';
  $('#np-elapsed').textContent = clock(pos);
  $('#np-total').textContent = d ? clock(d) : '–:––';
  const seek = $('#np-seek');
  if (!seeking && document.activeElement !== seek) seek.value = String(Math.round(pos));
}
