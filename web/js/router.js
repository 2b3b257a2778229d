// Which page an address shows. Hash routes today: `#/` (home, or sign-in)
// and `#/s/<sessionId>` (a session). Party routes the hub will serve later
// (`/j/CODE` to join by code, `/tv/CODE` for the big screen) are added here.

const ROUTES = [
  { name: 'session', hash: /^#\/s\/([0-9a-fA-F-]{1,64})\/?$/ },
];

/** {name, id?} for the current address. */
export function currentRoute() {
  for (const r of ROUTES) {
    const m = location.hash.match(r.hash);
    if (m) return { name: r.name, id: m[1].toLowerCase() };
  }
  return { name: 'home' };
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** The session id in a pasted link or id, or null. */
export function sessionIdIn(text) {
  const m = String(text).match(UUID);
  return m ? m[0].toLowerCase() : null;
}
