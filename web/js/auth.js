// Who is signed in: the token and user kept in localStorage, and a way for
// the rest of the page to hear when that changes (sign-in, sign-out, expiry).

const TOKEN_KEY = 'audotics.token';
const USER_KEY = 'audotics.user';

function readJson(s) {
  try {
    return s ? JSON.parse(s) : null;
  } catch {
    return null;
  }
}

const listeners = new Set();
let token = localStorage.getItem(TOKEN_KEY);
let user = readJson(localStorage.getItem(USER_KEY));

export const auth = {
  get token() { return token; },
  get user() { return user; },
  get signedIn() { return Boolean(token && user); },

  set(newToken, newUser) {
    token = newToken;
    user = newUser;
    if (token) {
      localStorage.setItem(TOKEN_KEY, token);
      localStorage.setItem(USER_KEY, JSON.stringify(user));
    } else {
      localStorage.removeItem(TOKEN_KEY);
      localStorage.removeItem(USER_KEY);
    }
    for (const fn of listeners) fn();
  },

  clear() {
    if (token || user) this.set(null, null);
  },

  onChange(fn) {
    listeners.add(fn);
  },
};
