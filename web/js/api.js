// A small fetch wrapper: JSON in and out, the bearer token from
// localStorage, and API errors thrown as ApiError with the stable code.
export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || 'HTTP ' + status);
    this.status = status;
    this.body = body || { code: 'network' };
    this.code = this.body.code;
  }
}

const base = 'api/v1';

export const session = {
  get token() { return localStorage.getItem('eq.token') || ''; },
  get kind() { return localStorage.getItem('eq.kind') || ''; },
  get name() { return localStorage.getItem('eq.name') || ''; },
  set(token, kind, name) {
    localStorage.setItem('eq.token', token); localStorage.setItem('eq.kind', kind); localStorage.setItem('eq.name', name);
  },
  clear() { for (const k of ['eq.token', 'eq.kind', 'eq.name']) localStorage.removeItem(k); },
};

export function url(path) {
  return new URL(base + path, document.baseURI).toString();
}

// api sends one request. Options: raw (return the Response of a 2xx),
// headers (extra request headers), timeout (ms; past it the request counts as
// a network failure, like a dropped connection).
export async function api(method, path, body, { raw = false, headers: extra = {}, timeout = 0 } = {}) {
  const headers = { ...extra };
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  let res;
  try {
    const signal = timeout && AbortSignal.timeout ? AbortSignal.timeout(timeout) : undefined;
    res = await fetch(url(path), { method, headers, body: payload, signal });
  } catch (e) {
    throw new ApiError(0, null);
  }
  if (raw && res.ok) return res;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) {
    const err = new ApiError(res.status, data && data.error);
    err.retryAfter = Number(res.headers.get('Retry-After')) || 0; // seconds (429, 502, 503, 504)
    if (res.status === 401 && session.token) {
      session.clear();
      window.dispatchEvent(new CustomEvent('eq:logout'));
    }
    if (res.status === 403 && data && data.error && data.error.code === 'password_change_required') {
      window.dispatchEvent(new CustomEvent('eq:must-change'));
    }
    throw err;
  }
  return data;
}

// newKey returns a fresh Idempotency-Key: one per click, kept for every
// retry of that click (the server answers a retry with the click's original
// answer instead of queueing it twice).
export function newKey() {
  if (crypto.randomUUID) return crypto.randomUUID();
  const b = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

// retryable reports whether a failed request may have got lost on the way
// and is safe to send again under the same Idempotency-Key: no answer at
// all (network), or 502 / 503 / 504 (an api or the service behind it could
// not be reached). 503 opening is not: the page waits for the draw instead
// (whileOpening in app.js).
export function retryable(e) {
  if (!(e instanceof ApiError)) return false;
  if (e.status === 503) return e.code !== 'opening';
  return e.status === 0 || e.status === 502 || e.status === 504;
}

// withRetry calls call() and, while it fails retryably, again after 0.5, 1,
// 2, 4 s (each at least the answer's Retry-After, with ±20 % jitter so a
// crowd does not come back at once): at most tries calls in all. onRetry(n,
// tries, ms) runs before the n-th retry. The last failure is thrown.
export async function withRetry(call, { tries = 5, base = 500, onRetry } = {}) {
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (e) {
      if (!retryable(e) || i >= tries) throw e;
      const ms = Math.max(base * 2 ** (i - 1), (e.retryAfter || 0) * 1000) * (0.8 + 0.4 * Math.random());
      if (onRetry) onRetry(i, tries - 1, ms);
      await new Promise((res) => setTimeout(res, ms));
    }
  }
}
