/**
 * The dashboard's only way to the broker: same-origin calls to the node's JSON API
 * (docs/http-api.md), with the optional bearer token, a deadline on every call, and failures
 * turned into one error type the page can show.
 */

const TOKEN_KEY = 'flotilla.dashboard.token';

/** A failed API call: `code` is the server's error code, or NETWORK / TIMEOUT / BAD_RESPONSE. */
export class ApiCallError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number} status HTTP status, 0 when no answer came
   */
  constructor(code, message, status) {
    super(message);
    this.name = 'ApiCallError';
    this.code = code;
    this.status = status;
  }

  /** True when the node could not be reached at all (as opposed to answering with an error). */
  get unreachable() {
    return this.status === 0;
  }
}

/** The token lives in sessionStorage: it survives reloads of this tab, not the browser session. */
export const tokenStore = {
  get() {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  },
  /** @param {string} token */
  set(token) {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  },
};

/**
 * @param {string} path e.g. `/api/cluster`
 * @param {{method?: string, body?: unknown, timeoutMs?: number}} [options]
 * @returns {Promise<any>}
 */
export async function callApi(path, { method = 'GET', body, timeoutMs = 10_000 } = {}) {
  /** @type {Record<string, string>} */
  const headers = { accept: 'application/json' };
  const token = tokenStore.get();
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal: AbortSignal.timeout(timeoutMs),
      cache: 'no-store',
    });
  } catch (err) {
    const timedOut = err instanceof DOMException && err.name === 'TimeoutError';
    throw new ApiCallError(
      timedOut ? 'TIMEOUT' : 'NETWORK',
      timedOut ? `no answer within ${timeoutMs} ms` : 'the node did not answer',
      0,
    );
  }
  return parseResponse(response);
}

/** @param {Response} response */
async function parseResponse(response) {
  let value;
  try {
    value = await response.json();
  } catch {
    throw new ApiCallError('BAD_RESPONSE', `HTTP ${response.status} without a JSON body`, response.status);
  }
  if (response.ok) return value;
  const code = typeof value?.code === 'string' ? value.code : `HTTP_${response.status}`;
  const message = typeof value?.message === 'string' ? value.message : response.statusText;
  throw new ApiCallError(code, message, response.status);
}

/** Path of a queue route, with the name escaped. */
export function queuePath(name, suffix = '') {
  return `/api/queues/${encodeURIComponent(name)}${suffix}`;
}

/**
 * A probe (`/health`, `/ready`): its answer whatever the status, since 503 carries the reason.
 * @param {string} path
 * @returns {Promise<{ok: boolean, reason: string | null}>}
 */
export async function probe(path, timeoutMs = 5_000) {
  try {
    const response = await fetch(path, { signal: AbortSignal.timeout(timeoutMs), cache: 'no-store' });
    const value = await response.json().catch(() => null);
    return { ok: response.ok, reason: typeof value?.reason === 'string' ? value.reason : null };
  } catch {
    return { ok: false, reason: 'no answer' };
  }
}
