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

export async function api(method, path, body, { raw = false } = {}) {
  const headers = {};
  if (session.token) headers.Authorization = 'Bearer ' + session.token;
  let payload;
  if (body instanceof FormData) payload = body;
  else if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
  let res;
  try {
    res = await fetch(url(path), { method, headers, body: payload });
  } catch (e) {
    throw new ApiError(0, null);
  }
  if (raw && res.ok) return res;
  const text = await res.text();
  let data = null;
  try { data = text ? JSON.parse(text) : null; } catch (_) { data = null; }
  if (!res.ok) {
    const err = new ApiError(res.status, data && data.error);
    err.retryAfter = Number(res.headers.get('Retry-After')) || 0; // seconds (429, 503 opening)
    if (res.status === 401 && session.token) {
      session.clear();
      window.dispatchEvent(new CustomEvent('eq:logout'));
    }
    throw err;
  }
  return data;
}
