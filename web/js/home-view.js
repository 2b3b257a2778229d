// Home: start a session (you become its host) or join one from a link.

import { api } from './api.js';
import { $, formError, withBusy } from './dom.js';
import { problem } from './messages.js';
import { sessionIdIn } from './router.js';

export function initHomeView() {
  $('#form-create').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.currentTarget;
    withBusy(f, async () => {
      try {
        const r = await api('POST', '/sessions', { name: f.name.value.trim() });
        formError(f, null);
        f.reset();
        location.hash = `#/s/${r.session.id}`;
      } catch (err) {
        formError(f, `Couldn't create the session. ${problem(err)}`);
      }
    });
  });

  $('#form-join').addEventListener('submit', (e) => {
    e.preventDefault();
    const f = e.currentTarget;
    const id = sessionIdIn(f.link.value);
    if (!id) {
      formError(f, "That's not a session link or ID. Paste the link your host shared.");
      return;
    }
    formError(f, null);
    f.reset();
    location.hash = `#/s/${id}`;
  });
}
