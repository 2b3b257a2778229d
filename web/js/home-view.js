// Home: start a session (you become its host) or join one from a link.

import { api } from './api.js';
import { $, formError, withBusy } from './dom.js';
import { problem } from './messages.js';
import { codeIn, sessionIdIn } from './router.js';

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
    const code = id ? null : codeIn(f.link.value);
    if (code) {
      location.assign(`/j/${code}`);
      return;
    }
    if (!id) {
      formError(f, "That's not a session link, code or ID. Paste the link your host shared, or type the 6-character code.");
      return;
    }
    formError(f, null);
    f.reset();
    location.hash = `#/s/${id}`;
  });
}
