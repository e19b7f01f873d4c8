// The registration screen's engine: tracks the student's requests, listens
// to queue-ws for positions and results, and falls back to polling
// GET /requests/{id} every 2 s when the socket fails, closes or goes silent
// (no frame for SILENT_MS while a request waits), trying the socket again
// after RETRY_MS. Tracked
// requests are kept in sessionStorage, and on return the student's pending
// and decided requests are read back from GET /me/requests, so a reload or
// a dropped connection resumes the same tickets.
//
// Pre-queue entries (sent before the opening while the registrar's pre-queue
// is open) have no request yet: they are listed as waiting for the draw. The
// socket is opened with draw=1, and queue-ws sends one "opened" frame when
// the window opens; the page then reads GET /me/requests after a random part
// of the frame's spread_ms (so 100,000 pages do not read at once). Without a
// socket it reads every 20–40 s instead (60–120 s with one, in case the
// socket died silently). Once drawn, an entry is an ordinary request and is
// watched like any other; an entry refused at the draw stays listed with the
// reason.
// While the draw runs, queue-ws tells the page each entry's outcome as it is
// drawn ("drawn" frames): a page told of every entry needs no read at all.
import { api } from './api.js';

const KEY = 'eq.tracked';
const SILENT_MS = 15000; // queue-ws sends a waiting request a frame at least every 10 ticks (10 s)
const RETRY_MS = 15000; // back to live positions after 15–30 s of polling (jittered: no herd)
const DRAW_MS = 30000;  // waiting for the draw without a socket: GET /me/requests every 20–40 s (×3 with one)

function load() {
  try { return JSON.parse(sessionStorage.getItem(KEY) || '[]'); } catch (_) { return []; }
}

export const tracker = {
  list: load(), // [{request_id, course_id, code, section, title, title_en, status, position, ahead, eta, reason, error, pre}]
  mode: '',     // 'ws' | 'poll' | ''
  onChange: null,
  ws: null,
  pollTimer: null,
  retryTimer: null,
  drawTimer: null, // the next GET /me/requests while an entry waits for the draw
  starting: false, // a ws token is being fetched (ensureWatching)
  gen: 0,          // bumped on reset: late answers for a logged-out student are dropped

  items() { return this.list.slice().sort((a, b) => (b.request_id || 0) - (a.request_id || 0) || (a.course_id - b.course_id)); },

  save() {
    sessionStorage.setItem(KEY, JSON.stringify(this.list.slice(0, 50)));
    if (this.onChange) this.onChange();
  },

  reset() {
    this.list = [];
    sessionStorage.removeItem(KEY);
    this.stop();
    clearTimeout(this.drawTimer);
    this.drawTimer = null;
    this.gen++;
  },

  stop() {
    if (this.ws) { this.ws.onclose = null; this.ws.close(); this.ws = null; }
    clearInterval(this.pollTimer);
    this.pollTimer = null;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.mode = '';
  },

  add(entries, wsUrl) {
    for (const e of entries) {
      const i = this.list.findIndex((x) => (e.request_id && x.request_id === e.request_id) || (!e.request_id && !x.request_id && x.course_id === e.course_id));
      if (i >= 0) this.list.splice(i, 1);
      this.list.unshift(e);
    }
    this.save();
    if (wsUrl) this.connect(wsUrl); else this.ensureWatching();
    this.pollDraw();
  },

  pending() { return this.list.filter((x) => x.status === 'queued' && x.request_id); },

  // waitingDraw lists the pre-queue entries not drawn yet.
  waitingDraw() { return this.list.filter((x) => x.status === 'prequeued'); },

  update(id, patch) {
    const it = this.list.find((x) => x.request_id === id);
    if (!it || (it.status !== 'queued' && patch.status === 'queued')) return;
    // Positions never go up (DESIGN law 4); ignore a stale, higher one.
    if (patch.position !== undefined && it.position !== undefined && patch.position > it.position && it.status === 'queued') delete patch.position;
    // When this page learned of the decision (the requests screen rereads
    // the enrollments after it) and when it was made, as far as we know.
    if (patch.status && patch.status !== 'queued' && patch.status !== it.status) { patch.seen = Date.now(); if (!patch.decided_at) patch.decided_at = new Date().toISOString(); }
    Object.assign(it, patch);
    this.save();
    if (!this.pending().length && !this.waitingDraw().length) this.stop();
  },

  connect(wsUrl) {
    this.stop();
    if (!this.pending().length && !this.waitingDraw().length) return;
    let u;
    try {
      u = new URL(wsUrl, location.href);
      u.protocol = u.protocol === 'https:' ? 'wss:' : 'ws:';
    } catch (_) { this.poll(); return; }
    let ws;
    try { ws = new WebSocket(u.toString()); } catch (_) { this.poll(); return; }
    this.ws = ws;
    const fallback = setTimeout(() => { if (ws.readyState !== WebSocket.OPEN) { ws.onclose = null; ws.close(); this.poll(); } }, 4000);
    // While a request waits, queue-ws sends its position when it moves (every
    // tick near the front, less often far back) and at least every 10 s.
    // Silence for SILENT_MS means the socket is dead without having closed
    // (a NAT that forgot it, a frozen instance): the shown position would
    // freeze, so drop the socket and poll instead.
    let heard = Date.now();
    const watchdog = setInterval(() => {
      if (this.ws !== ws) { clearInterval(watchdog); return; }
      if (ws.readyState === WebSocket.OPEN && this.pending().length && Date.now() - heard > SILENT_MS) {
        clearInterval(watchdog);
        ws.onclose = null;
        ws.close();
        this.ws = null;
        this.poll();
      }
    }, 1000);
    ws.onopen = () => {
      clearTimeout(fallback);
      heard = Date.now();
      this.mode = 'ws';
      for (const it of this.pending()) ws.send(JSON.stringify({ type: 'watch', request_id: it.request_id }));
      this.save();
    };
    ws.onmessage = (ev) => {
      heard = Date.now();
      let m;
      try { m = JSON.parse(ev.data); } catch (_) { return; }
      if (m.type === 'position') this.update(m.request_id, { position: m.position, ahead: m.ahead, eta: m.eta_seconds });
      else if (m.type === 'result') this.update(m.request_id, { status: m.status, reason: m.reason || '', position: 0 });
      else if (m.type === 'drawn') this.drawn(m);
      else if (m.type === 'opened') this.opened(m.spread_ms || 1000);
    };
    ws.onerror = () => {};
    ws.onclose = () => {
      clearTimeout(fallback);
      clearInterval(watchdog);
      if (this.ws === ws) this.ws = null;
      if (this.pending().length) this.poll();
    };
  },

  poll() {
    this.mode = 'poll';
    if (this.onChange) this.onChange();
    if (this.pollTimer) return;
    const tick = async () => {
      const ps = this.pending();
      if (!ps.length) { this.stop(); if (this.onChange) this.onChange(); return; }
      await Promise.all(ps.map(async (it) => {
        try {
          const r = await api('GET', '/requests/' + it.request_id);
          this.update(it.request_id, { status: r.status, position: r.status === 'queued' ? r.position : 0, ahead: r.status === 'queued' ? r.position - 1 : undefined, reason: r.reason || '' });
        } catch (e) {
          if (e.status === 404 || e.status === 403) this.update(it.request_id, { status: 'error', error: e.body });
        }
      }));
    };
    this.pollTimer = setInterval(tick, 2000);
    tick();
    // Polling is the fallback, not the mode: try the socket again later.
    if (!this.retryTimer) this.retryTimer = setTimeout(() => this.retryLive(), RETRY_MS * (1 + Math.random()));
  },

  retryLive() {
    this.retryTimer = null;
    if (this.mode !== 'poll' || this.ws || !this.pending().length) return;
    clearInterval(this.pollTimer);
    this.pollTimer = null;
    this.ensureWatching();
  },

  async ensureWatching() {
    if ((!this.pending().length && !this.waitingDraw().length) || this.ws || this.pollTimer || this.starting) return;
    this.starting = true;
    let r;
    try {
      r = await api('POST', '/auth/ws-token');
    } catch (_) { this.starting = false; this.poll(); return; }
    this.starting = false;
    let u = r.ws_url;
    if (this.pending().length) u += '&requests=' + this.pending().map((x) => x.request_id).join(',');
    if (this.waitingDraw().length) u += '&draw=1';
    this.connect(u);
  },

  // drawn applies one entry's outcome from the draw: a request to follow,
  // or the refusal.
  drawn(m) {
    const it = this.list.find((x) => x.pre && x.status === 'prequeued' && x.course_id === m.course_id);
    if (!it) return;
    if (m.request_id) {
      Object.assign(it, { request_id: m.request_id, status: 'queued', pre: false });
      this.save();
      // queue-ws watches a drawn request on this socket itself; a new socket
      // names it.
      if (!(this.ws && this.ws.readyState === WebSocket.OPEN)) this.ensureWatching();
    } else {
      Object.assign(it, { status: 'error', reason: m.error || 'refused', seen: Date.now(), decided_at: new Date().toISOString() });
      this.save();
    }
  },

  // opened: the window opened, so every entry was drawn; if one is still
  // waiting here (no drawn frame came for it), read them after a random
  // part of spread_ms and follow the drawn requests.
  opened(spreadMs) {
    if (!this.waitingDraw().length) return;
    clearTimeout(this.drawTimer);
    this.drawTimer = null;
    const gen = this.gen;
    this.drawTimer = setTimeout(() => { if (gen === this.gen) { this.drawTimer = null; this.readDraw(); } }, Math.random() * spreadMs);
  },

  // follow watches requests that became pending after the socket opened
  // (drawn from the pre-queue): a watch frame each on an open socket; a
  // socket still connecting watches every pending request when it opens, and
  // polling reads every pending request on each tick.
  follow(ids) {
    if (!ids.length) return;
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      for (const id of ids) this.ws.send(JSON.stringify({ type: 'watch', request_id: id }));
    } else this.ensureWatching();
  },

  // merge folds GET /me/requests into the list and returns the ids of
  // requests that are newly waiting.
  merge(r) {
    const before = new Set(this.pending().map((x) => x.request_id));
    for (const q of r.requests) {
      const it = this.list.find((x) => x.request_id === q.request_id);
      const patch = { status: q.status, reason: q.reason || '', position: q.status === 'queued' ? q.position : 0 };
      if (q.created_at) patch.at = q.created_at;
      if (q.decided_at) patch.decided_at = q.decided_at;
      if (q.status !== 'queued' && (!it || it.status !== q.status)) patch.seen = Date.now();
      if (it) Object.assign(it, it.status === 'queued' || q.status !== 'queued' ? patch : {});
      else this.list.push({ request_id: q.request_id, course_id: q.course_id, code: q.code, section: q.section, title: q.title, ...patch });
    }
    // Pre-queue entries: the server's list replaces ours (an entry it no
    // longer lists belongs to an expired round).
    const pre = r.prequeue || [];
    const old = new Map(this.list.filter((x) => x.pre).map((x) => [x.course_id, x]));
    this.list = this.list.filter((x) => !x.pre);
    for (const p of pre) {
      const was = old.get(p.course_id) || {};
      const names = { course_id: p.course_id, code: p.code, section: p.section, title: p.title, title_en: was.title_en, at: was.at };
      if (p.status === 'prequeued') this.list.push({ request_id: 0, ...names, status: 'prequeued', pre: true });
      else if (p.status === 'refused') this.list.push({ request_id: 0, ...names, status: 'error', reason: p.error || 'refused', pre: true });
      else if (p.status === 'drawn' && p.request_id && !this.list.some((x) => x.request_id === p.request_id)) {
        // Drawn but not (yet) among the requests read: watch it all the same.
        this.list.push({ request_id: p.request_id, ...names, status: 'queued' });
      }
    }
    // A cart error for a course that is now a pre-queue entry is outdated.
    this.list = this.list.filter((x) => x.request_id || x.pre || !pre.some((p) => p.course_id === x.course_id));
    this.save();
    return this.pending().map((x) => x.request_id).filter((id) => !before.has(id));
  },

  // readDraw reads GET /me/requests once, follows the drawn requests and,
  // if an entry still waits, schedules the next read (pollDraw).
  async readDraw() {
    const gen = this.gen;
    try {
      const r = await api('GET', '/me/requests?limit=30');
      if (gen !== this.gen) return;
      this.follow(this.merge(r));
    } catch (_) { /* try again on the next tick */ }
    if (gen !== this.gen) return;
    this.pollDraw();
  },

  // pollDraw schedules the fallback read while an entry waits for the draw
  // and the screen is shown: every 20–40 s without a socket, every 60–120 s
  // with one (the opened frame is the fast path).
  pollDraw() {
    if (this.drawTimer || !this.onChange || !this.waitingDraw().length) return;
    const gen = this.gen;
    const every = DRAW_MS * (this.mode === 'ws' ? 3 : 1);
    this.drawTimer = setTimeout(() => { if (gen === this.gen) { this.drawTimer = null; this.readDraw(); } }, every * (0.67 + Math.random() * 0.67));
  },

  // resume merges the server's view of the student's requests and starts
  // watching the pending ones.
  async resume() {
    const gen = this.gen;
    try {
      const r = await api('GET', '/me/requests?limit=30');
      if (gen !== this.gen) return;
      this.merge(r);
    } catch (_) { /* the list stays as it was */ }
    this.ensureWatching();
    this.pollDraw();
  },

  async cancel(id) {
    const r = await api('DELETE', '/requests/' + id);
    this.update(id, { status: r.status, reason: r.reason || '', position: 0 });
  },
};
