// Which page an address shows. Hash routes: `#/` (home, or sign-in) and
// `#/s/<sessionId>` (a session). Path routes the hub serves index.html at:
// `/j/CODE` (join by code) and `/tv/CODE` (the party's big screen).

const ROUTES = [
  { name: 'session', hash: /^#\/s\/([0-9a-fA-F-]{1,64})\/?$/ },
];

const PATHS = [
  { name: 'join', path: /^\/j\/([^/]{1,32})\/?$/ },
  { name: 'tv', path: /^\/tv\/([^/]{1,32})\/?$/ },
];

/** {name, id?, code?} for the current address. */
export function currentRoute() {
  for (const r of PATHS) {
    const m = location.pathname.match(r.path);
    if (m) return { name: r.name, code: normalizeCode(decodeURIComponent(m[1])) };
  }
  for (const r of ROUTES) {
    const m = location.hash.match(r.hash);
    if (m) return { name: r.name, id: m[1].toLowerCase() };
  }
  return { name: 'home' };
}

/** A join code as typed ("cdf-ghj", "CDF GHJ") in its stored form ("CDFGHJ"). */
export function normalizeCode(text) {
  return String(text).replace(/[\s-]/g, '').toUpperCase();
}

/** A join code in pasted text (a /j/ link or the 6 characters), or null. */
export function codeIn(text) {
  const t = String(text).trim();
  const link = t.match(/\/j\/([^/?#\s]+)/);
  const code = normalizeCode(link ? link[1] : t);
  return /^[34679CDFGHJKMNPQRTVWXY]{6}$/.test(code) ? code : null;
}

const UUID = /[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}/i;

/** The session id in a pasted link or id, or null. */
export function sessionIdIn(text) {
  const m = String(text).match(UUID);
  return m ? m[0].toLowerCase() : null;
}
