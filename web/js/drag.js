// Drag to reorder with Pointer Events, so one code path serves a finger, a
// mouse and a pen: press a row's handle (⠿), move, let go. The row follows
// the pointer, a line shows where it will land, and the page scrolls when
// the pointer nears the top or bottom edge. HTML5 drag and drop does not
// work with touch, which is why this exists.

const START_PX = 4; // movement before a press becomes a drag
const EDGE_PX = 56; // distance from an edge where the page scrolls
const SCROLL_STEP = 14; // px per frame at the very edge

/**
 * @param {HTMLElement} list the <ol> of `li.entry` rows with `.handle` buttons
 * @param {object} o
 * @param {(entryId: string, toIndex: number) => void} o.onDrop
 * @param {(active: boolean) => void} o.onActive a drag started / ended
 */
export function initDrag(list, { onDrop, onActive }) {
  let d = null; // the drag in progress

  list.addEventListener('pointerdown', (e) => {
    const handle = e.target.closest('.handle');
    if (!handle || d || (e.pointerType === 'mouse' && e.button !== 0)) return;
    const li = handle.closest('li.entry');
    const rows = [...list.querySelectorAll('li.entry')];
    d = {
      pointerId: e.pointerId,
      handle,
      li,
      entryId: li.dataset.entry,
      from: rows.indexOf(li),
      // Row middles in page coordinates, as they were when the press began.
      mids: rows.map((r) => {
        const b = r.getBoundingClientRect();
        return b.top + window.scrollY + b.height / 2;
      }),
      rows,
      startY: e.clientY + window.scrollY,
      y: e.clientY,
      active: false,
      target: -1,
      raf: 0,
    };
    handle.setPointerCapture(e.pointerId);
  });

  list.addEventListener('pointermove', (e) => {
    if (!d || e.pointerId !== d.pointerId) return;
    d.y = e.clientY;
    if (!d.active) {
      if (Math.abs(e.clientY + window.scrollY - d.startY) < START_PX) return;
      d.active = true;
      d.li.classList.add('dragging');
      onActive(true);
      d.raf = requestAnimationFrame(edgeScroll);
    }
    e.preventDefault();
    follow();
  });

  const finish = (drop) => (e) => {
    if (!d || e.pointerId !== d.pointerId) return;
    const done = d;
    d = null;
    cancelAnimationFrame(done.raf);
    if (done.handle.hasPointerCapture(e.pointerId)) done.handle.releasePointerCapture(e.pointerId);
    if (!done.active) return;
    // The click that follows a drag is not a press of the handle.
    done.handle.addEventListener('click', (c) => c.stopPropagation(), { capture: true, once: true });
    done.li.classList.remove('dragging');
    done.li.style.removeProperty('transform');
    for (const r of done.rows) r.classList.remove('drop-before', 'drop-after');
    onActive(false);
    if (drop && done.target !== -1 && done.target !== done.from) onDrop(done.entryId, done.target);
  };
  list.addEventListener('pointerup', finish(true));
  list.addEventListener('pointercancel', finish(false));
  list.addEventListener('lostpointercapture', finish(false));

  function follow() {
    const y = d.y + window.scrollY;
    d.li.style.transform = `translateY(${Math.round(y - d.startY)}px)`;
    // Where it lands: after every other row whose middle is above the pointer.
    let target = 0;
    d.mids.forEach((mid, i) => { if (i !== d.from && mid < y) target += 1; });
    d.target = target;
    d.rows.forEach((r, i) => {
      r.classList.toggle('drop-before', target < d.from && i === target);
      r.classList.toggle('drop-after', target > d.from && i === target);
    });
  }

  function edgeScroll() {
    if (!d) return;
    const top = stickyBottom();
    const bottom = window.innerHeight - bottomBar();
    let step = 0;
    if (d.y < top + EDGE_PX) step = -SCROLL_STEP * Math.min(1, (top + EDGE_PX - d.y) / EDGE_PX);
    else if (d.y > bottom - EDGE_PX) step = SCROLL_STEP * Math.min(1, (d.y - bottom + EDGE_PX) / EDGE_PX);
    if (step) {
      window.scrollBy(0, step);
      follow();
    }
    d.raf = requestAnimationFrame(edgeScroll);
  }
}

function stickyBottom() {
  const head = document.querySelector('.masthead');
  return head ? head.getBoundingClientRect().bottom : 0;
}

function bottomBar() {
  const bar = document.querySelector('.tabbar');
  return bar && getComputedStyle(bar).display !== 'none' ? bar.getBoundingClientRect().height : 0;
}
