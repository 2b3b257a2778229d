// The hub's REST API (/v1): one fetch wrapper that adds the token, parses
// problem+json into an ApiError, and signs the user out when the hub says
// the token is no longer good.

import { auth } from './auth.js';

export class ApiError extends Error {
  /**
   * @param {number} status HTTP status, 0 when the hub could not be reached
   * @param {string} code the problem's `code` word, or `network` / `timeout`
   */
  constructor(status, code, { field = null, retryAfter = null, detail = '' } = {}) {
    super(detail || code || `HTTP ${status}`);
    this.status = status;
    this.code = code;
    this.field = field;
    this.retryAfter = retryAfter;
  }
}

/**
 * `method` `path` (under /v1) with an optional JSON `body`. Resolves to the
 * parsed body; rejects with an ApiError. `signal` cancels (rejects with an
 * AbortError, which callers that cancel on purpose ignore).
 */
export async function api(method, path, body, { signal, timeoutMs = 15000 } = {}) {
  const headers = { Accept: 'application/json' };
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (auth.token) headers.Authorization = `Bearer ${auth.token}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  let res;
  try {
    res = await fetch(`/v1${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (e) {
    if (signal && signal.aborted) throw e;
    if (timeout.aborted) throw new ApiError(0, 'timeout');
    throw new ApiError(0, 'network');
  }
  const text = await res.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!res.ok) {
    const retry = Number(res.headers.get('Retry-After'));
    const err = new ApiError(res.status, (data && data.code) || (res.status >= 500 ? 'unavailable' : 'invalid'), {
      field: data && data.field,
      retryAfter: Number.isFinite(retry) && retry > 0 ? retry : null,
      detail: data && data.detail,
    });
    // The hub's own words stay in the console for whoever debugs; people
    // get plain words (messages.js).
    console.info(`audotics: ${method} /v1${path} → ${res.status}`, data && data.detail);
    if (res.status === 401 && path !== '/auth/token') auth.clear();
    throw err;
  }
  return data;
}
