// Registrar pages: log in, live dashboard, imports with progress and the
// error report, registration windows, capacities, audits and the export.
import { api, session } from './api.js';
import { t, reason, getLang } from './i18n.js';
import { $, h, view, flash, showError, go, courseTitle } from './app.js';
import { lineChart } from './chart.js';

function login() {
  const form = h('form', { class: 'card narrow', id: 'admin-login-form', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/admin/login', { username: $('#admin-user').value.trim(), password: $('#admin-password').value });
      session.set(r.token, 'admin', $('#admin-user').value.trim());
      flash('');
      go('#/admin');
    } catch (e) { showError(e); }
  } },
  h('label', { for: 'admin-user' }, t('login.admin.user')),
  h('input', { type: 'text', id: 'admin-user', autocomplete: 'username', required: true }),
  h('label', { for: 'admin-password' }, t('login.pw')),
  h('input', { type: 'password', id: 'admin-password', autocomplete: 'current-password', required: true }),
  h('p', {}, h('button', { class: 'btn', type: 'submit', id: 'admin-login-btn' }, t('login.submit'))),
  h('p', { class: 'muted' }, h('a', { href: '#/login' }, t('login.toStudent'))));
  view('login.admin', form);
  $('#admin-user').focus();
}

// ---------- dashboard ----------

const series = { at: [], pending: [], admitted: [], decided: [] };
let dashTimer = null;

function dashboard() {
  view('admin.dash',
    h('div', { class: 'kpis', id: 'kpis' }),
    prequeueCard(),
    h('h2', {}, t('chart.queue')), h('div', { id: 'chart-queue', class: 'chart', role: 'img', 'aria-label': t('chart.queue') }),
    h('h2', {}, t('chart.rate')), h('div', { id: 'chart-rate', class: 'chart', role: 'img', 'aria-label': t('chart.rate') }),
    h('div', { class: 'legend' }, h('span', {}, h('i', { style: 'background:#1f5fbf' }), t('kpi.admitted')), h('span', {}, h('i', { style: 'background:#1d7a3a' }), t('kpi.decided'))),
    h('h2', {}, t('admin.fill')), h('div', { class: 'table-wrap' }, h('table', { id: 'fill' })),
    h('h2', {}, t('admin.rejections')), h('div', { class: 'table-wrap' }, h('table', { id: 'rejections' })));
  clearInterval(dashTimer);
  const tick = async () => {
    if (!$('#kpis')) { clearInterval(dashTimer); dashTimer = null; return; }
    let s;
    const seq = pq.seq;
    try { s = await api('GET', '/admin/stats?top=10'); } catch (e) { showError(e); return; }
    if (s.prequeue && seq === pq.seq && !pq.busy) renderPrequeue(s.prequeue, s.open);
    series.at.push(Date.parse(s.at) / 1000);
    series.pending.push(s.pending);
    series.admitted.push(s.admitted_per_sec);
    series.decided.push(s.decided_per_sec);
    for (const k of Object.keys(series)) if (series[k].length > 300) series[k].shift();
    renderDash(s);
  };
  tick();
  dashTimer = setInterval(tick, 1000);
}

function renderDash(s) {
  const kpis = $('#kpis');
  if (!kpis) return;
  const fillPct = s.totals.capacity ? Math.round((100 * s.totals.enrolled) / s.totals.capacity) : 0;
  const kpi = (label, value, id) => h('div', { class: 'kpi' }, h('span', { class: 'muted' }, label), h('b', { id }, value));
  kpis.replaceChildren(
    kpi(t('admin.flag'), s.open ? t('admin.flag.open') : t('admin.flag.closed'), 'kpi-open'),
    kpi(t('kpi.pending'), s.pending.toLocaleString(), 'kpi-pending'),
    kpi(t('kpi.sessions'), (s.ws_sessions || 0).toLocaleString(), 'kpi-sessions'),
    kpi(t('kpi.admitted'), s.admitted_per_sec.toFixed(1), 'kpi-admitted'),
    kpi(t('kpi.decided'), s.decided_per_sec.toFixed(1), 'kpi-decided'),
    kpi(t('kpi.enrolled'), (s.decided_by_status.enrolled || 0).toLocaleString(), 'kpi-enrolled'),
    kpi(t('kpi.rejected'), (s.decided_by_status.rejected || 0).toLocaleString(), 'kpi-rejected'),
    kpi(t('kpi.fill'), fillPct + '%', 'kpi-fill'));
  lineChart($('#chart-queue'), series.at, [{ values: series.pending, color: '#a15c00' }]);
  lineChart($('#chart-rate'), series.at, [{ values: series.admitted, color: '#1f5fbf' }, { values: series.decided, color: '#1d7a3a' }]);
  $('#fill').replaceChildren(
    h('thead', {}, h('tr', {}, h('th', {}, t('col.code')), h('th', {}, t('col.title')), h('th', { class: 'num' }, t('col.seats')), h('th', {}, '%'), h('th', { class: 'num' }, t('nav.waitlist')))),
    h('tbody', {}, ...s.fill.map((c) => h('tr', {}, h('td', {}, c.code + '-' + c.section), h('td', {}, c.title),
      h('td', { class: 'num' }, c.enrolled + ' / ' + c.capacity),
      h('td', {}, h('div', { class: 'bar-bg', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(c.fill * 100) },
        h('div', { class: 'bar', style: `width:${Math.min(100, Math.round(c.fill * 100))}%` }))),
      h('td', { class: 'num' }, c.waitlist)))));
  $('#rejections').replaceChildren(
    h('thead', {}, h('tr', {}, h('th', {}, t('col.reason')), h('th', { class: 'num' }, '#'))),
    h('tbody', {}, ...(s.rejections.length ? s.rejections.map((r) => h('tr', {}, h('td', {}, reason(r.reason) + ' (' + r.reason + ')'), h('td', { class: 'num' }, r.count)))
      : [h('tr', {}, h('td', { colspan: 2, class: 'muted' }, '—'))])));
}

// ---------- the pre-queue ----------

// The pre-queue as last read (the stats' "prequeue", GET /admin/prequeue or
// a toggle's answer) and the window switch's state. A reading that started
// before a toggle (seq changed) is older than the toggle's answer and is not
// shown.
const pq = { st: null, windowOpen: false, busy: false, seq: 0 };
let pqTimer = null;

// prequeueCard is the pre-queue's control, on the dashboard and next to the
// registration switch: open/close, students and requests in it, and the
// draw's progress once registration opens.
function prequeueCard() {
  return h('div', { class: 'card', id: 'prequeue-card' }, h('h2', {}, t('pq.title')),
    h('p', { class: 'muted' }, t('pq.hint')),
    h('p', {}, h('span', { id: 'prequeue-state', class: 'badge' }, '…'), ' ', h('span', { id: 'prequeue-count' })),
    h('div', { id: 'prequeue-draw', 'aria-live': 'polite' }),
    h('p', {}, h('button', { class: 'btn secondary', type: 'button', id: 'prequeue-toggle', disabled: true, onclick: togglePrequeue }, t('pq.open')), ' ',
      h('span', { id: 'prequeue-note', class: 'muted' })));
}

function renderPrequeue(st, windowOpen) {
  pq.st = st;
  pq.windowOpen = windowOpen;
  if (!$('#prequeue-card') || !st) return;
  const state = $('#prequeue-state');
  state.className = 'badge' + (st.open ? ' ok' : '');
  state.textContent = t(st.open ? 'pq.state.open' : 'pq.state.closed');
  $('#prequeue-count').textContent = t('pq.count', { s: st.students.toLocaleString(), e: st.entries.toLocaleString() });
  const running = st.state === 'listing' || st.state === 'drawing';
  const draw = $('#prequeue-draw');
  if (st.state === 'listing') {
    draw.replaceChildren(h('progress', { class: 'progress', id: 'prequeue-progress' }), h('p', {}, t('pq.listing')));
  } else if (st.state === 'drawing') {
    draw.replaceChildren(h('progress', { class: 'progress', id: 'prequeue-progress', max: Math.max(1, st.total), value: st.cursor }),
      h('p', {}, t('pq.drawing', { c: st.cursor.toLocaleString(), t: st.total.toLocaleString() })));
  } else if (st.state === 'done') {
    const secs = st.started_at && st.done_at ? ((Date.parse(st.done_at) - Date.parse(st.started_at)) / 1000).toFixed(1) : '—';
    draw.replaceChildren(h('p', {}, h('span', { id: 'prequeue-done', class: 'badge ok' }, t('pq.done', { t: st.total.toLocaleString(), d: secs }))));
  } else {
    draw.replaceChildren(...(st.students && !windowOpen ? [h('p', {}, t('pq.waiting', { s: st.students.toLocaleString() }))] : []));
  }
  const btn = $('#prequeue-toggle');
  btn.textContent = t(st.open ? 'pq.close' : 'pq.open');
  btn.className = 'btn ' + (st.open ? 'danger' : 'secondary');
  btn.disabled = pq.busy || running || (!st.open && windowOpen);
  $('#prequeue-note').textContent = !st.open && windowOpen ? t('pq.windowOpen') : '';
}

async function togglePrequeue() {
  const open = !(pq.st && pq.st.open);
  pq.busy = true;
  pq.seq++;
  $('#prequeue-toggle').disabled = true;
  try {
    const st = await api('POST', '/admin/prequeue', { open });
    pq.busy = false;
    renderPrequeue(st, pq.windowOpen);
    flash(t(open ? 'pq.opened' : 'pq.closed'));
  } catch (e) {
    pq.busy = false;
    renderPrequeue(pq.st, pq.windowOpen);
    showError(e);
  }
}

// watchPrequeue reads GET /admin/prequeue every second while the windows
// page is shown (the dashboard has it in its stats).
function watchPrequeue() {
  clearInterval(pqTimer);
  pqTimer = setInterval(async () => {
    if (!$('#windows-form') || !$('#prequeue-card')) { clearInterval(pqTimer); pqTimer = null; return; }
    const seq = pq.seq;
    try {
      const st = await api('GET', '/admin/prequeue');
      if (seq === pq.seq && !pq.busy) renderPrequeue(st, pq.windowOpen);
    } catch (_) { /* the next second tries again */ }
  }, 1000);
}

// ---------- imports ----------

function importForm(kind, labelKey) {
  const id = kind;
  return h('form', { class: 'card', id: id + '-form', onsubmit: (ev) => { ev.preventDefault(); upload(kind); } },
    h('h2', {}, t(labelKey)),
    h('label', { for: id + '-file' }, t(labelKey)),
    h('input', { type: 'file', id: id + '-file', accept: '.csv,text/csv', required: true }),
    kind === 'students' ? [h('label', { for: 'initial-password' }, t('admin.initpw')), h('input', { type: 'text', id: 'initial-password', value: 'enrollq-2026', autocomplete: 'off' })] : null,
    h('p', {}, h('button', { class: 'btn', type: 'submit', id: id + '-upload' }, t('admin.upload'))),
    h('div', { id: id + '-status', 'aria-live': 'polite' }));
}

function imports() {
  view('admin.import', importForm('catalog', 'admin.catalog'), importForm('students', 'admin.roster'));
}

async function upload(kind) {
  const status = $('#' + kind + '-status');
  const file = $('#' + kind + '-file').files[0];
  if (!file) return;
  const fd = new FormData();
  fd.append('file', file);
  if (kind === 'students') fd.append('initial_password', $('#initial-password').value);
  status.replaceChildren(h('progress', { class: 'progress', id: kind + '-progress', max: 1, value: 0 }));
  let r;
  try {
    r = await api('POST', '/admin/' + kind, fd);
  } catch (e) {
    if (e.body && e.body.rows) return showRows(status, kind, e.body.rows);
    status.replaceChildren();
    return showError(e);
  }
  const id = r.job_id;
  for (;;) {
    let j;
    try { j = await api('GET', '/admin/jobs/' + id); } catch (e) { showError(e); return; }
    const bar = $('#' + kind + '-progress');
    if (bar) { bar.max = Math.max(1, j.total); bar.value = j.done; }
    if (j.state === 'running') {
      status.replaceChildren(h('progress', { class: 'progress', id: kind + '-progress', max: Math.max(1, j.total), value: j.done }), h('p', {}, t('admin.progress', { d: j.done, t: j.total })));
      await new Promise((res) => setTimeout(res, 300));
      continue;
    }
    if (j.state === 'failed') {
      if (j.errors && j.errors.length) return showRows(status, kind, j.errors);
      status.replaceChildren();
      flash(j.error || 'import failed', false);
      return;
    }
    status.replaceChildren(h('progress', { class: 'progress', id: kind + '-progress', max: 1, value: 1 }),
      h('p', { id: kind + '-done', class: 'badge ok' }, t('admin.done', { i: j.result.inserted, u: j.result.updated, s: j.result.unchanged })));
    return;
  }
}

function showRows(status, kind, rows) {
  const en = getLang() === 'en';
  status.replaceChildren(h('p', { class: 'flash err', role: 'alert' }, t('admin.invalid')),
    h('div', { class: 'table-wrap' }, h('table', { id: kind + '-errors', class: 'import-errors' },
      h('thead', {}, h('tr', {}, h('th', { class: 'num' }, t('col.row')), h('th', {}, t('col.column')), h('th', {}, t('col.code2')), h('th', {}, t('col.message')), h('th', {}, t('col.value')))),
      h('tbody', {}, ...rows.map((r) => h('tr', {}, h('td', { class: 'num' }, r.row), h('td', {}, r.column || ''), h('td', {}, h('code', {}, r.code)),
        h('td', {}, en ? r.message_en : r.message, h('div', { class: 'muted', lang: en ? 'ko' : 'en' }, en ? r.message : r.message_en)), h('td', {}, r.value || '')))))));
}

// ---------- windows ----------

const toLocal = (iso) => { const d = new Date(iso); d.setMinutes(d.getMinutes() - d.getTimezoneOffset()); return d.toISOString().slice(0, 16); };

async function windows() {
  let w, st;
  try { [w, st] = await Promise.all([api('GET', '/admin/windows'), api('GET', '/admin/prequeue')]); } catch (e) { showError(e); return; }
  const list = h('div', { id: 'window-list' });
  const addRow = (x) => list.append(h('div', { class: 'row window-row' },
    h('div', { class: 'shrink' }, h('label', {}, t('admin.year'), h('input', { type: 'number', min: 1, max: 6, class: 'w-year', value: x && x.year ? x.year : '' }))),
    h('div', {}, h('label', {}, t('admin.opens'), h('input', { type: 'datetime-local', class: 'w-opens', value: x ? toLocal(x.opens_at) : '', required: true }))),
    h('div', {}, h('label', {}, t('admin.closes'), h('input', { type: 'datetime-local', class: 'w-closes', value: x ? toLocal(x.closes_at) : '', required: true }))),
    h('button', { class: 'btn small secondary', type: 'button', onclick: (ev) => ev.target.closest('.window-row').remove() }, t('btn.remove'))));
  w.windows.forEach(addRow);
  // Opening draws the pre-queue first, which can take a while: the button
  // waits (the pre-queue card shows the draw's progress meanwhile).
  const setFlag = async (open, ev) => {
    ev.target.disabled = true;
    try { await api('POST', '/admin/window', { open }); flash(t('admin.saved')); windows(); } catch (e) { ev.target.disabled = false; showError(e); }
  };
  view('admin.windows',
    h('div', { class: 'card' }, h('h2', {}, t('admin.flag')),
      h('p', {}, t('admin.term', { t: w.term }), ' · ', h('span', { id: 'window-state', class: 'badge ' + (w.open ? 'ok' : 'bad') }, w.open ? t('admin.flag.open') : t('admin.flag.closed'))),
      h('p', {}, w.open
        ? h('button', { class: 'btn danger', type: 'button', id: 'window-close', onclick: (ev) => setFlag(false, ev) }, t('admin.close'))
        : h('button', { class: 'btn', type: 'button', id: 'window-open', onclick: (ev) => setFlag(true, ev) }, t('admin.open'))),
      h('p', { class: 'muted' }, t('admin.openNow', { y: w.open_now.join(', ') || '—' }))),
    prequeueCard(),
    h('form', { class: 'card', id: 'windows-form', onsubmit: async (ev) => {
      ev.preventDefault();
      const rows = [...document.querySelectorAll('.window-row')].map((r) => ({
        year: r.querySelector('.w-year').value ? Number(r.querySelector('.w-year').value) : null,
        opens_at: new Date(r.querySelector('.w-opens').value).toISOString(),
        closes_at: new Date(r.querySelector('.w-closes').value).toISOString(),
      }));
      try { await api('PUT', '/admin/windows', { windows: rows }); flash(t('admin.saved')); windows(); } catch (e) { showError(e); }
    } }, h('h2', {}, t('admin.windows')), w.windows.length ? null : h('p', { class: 'muted' }, t('admin.noWindows')), list,
    h('p', {}, h('button', { class: 'btn secondary', type: 'button', onclick: () => addRow(null) }, t('admin.addWindow')), ' ',
      h('button', { class: 'btn', type: 'submit' }, t('admin.saveWindows')))));
  renderPrequeue(st, w.open);
  watchPrequeue();
}

// ---------- courses, audit, export ----------

function courses() {
  view('nav.admin.courses',
    h('form', { class: 'card', id: 'capacity-form', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const r = await api('PATCH', '/admin/courses/' + Number($('#cap-course').value), { capacity: Number($('#cap-value').value) });
        flash(`${r.enrolled} / ${r.capacity}` + (r.promoted.length ? ` · +${r.promoted.filter((p) => p.status === 'enrolled').length} ${t('nav.waitlist')}` : ''));
      } catch (e) { showError(e); }
    } }, h('h2', {}, t('admin.capacity')),
    h('div', { class: 'row' }, h('div', {}, h('label', { for: 'cap-course' }, t('admin.courseId')), h('input', { type: 'number', id: 'cap-course', min: 1, required: true })),
      h('div', {}, h('label', { for: 'cap-value' }, t('admin.newCap')), h('input', { type: 'number', id: 'cap-value', min: 0, required: true })),
      h('button', { class: 'btn', type: 'submit' }, t('me.save')))),
    h('form', { class: 'card', id: 'audit-form', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const a = await api('GET', '/admin/students/' + encodeURIComponent($('#audit-no').value.trim()) + '/requests');
        $('#audit-out').replaceChildren(h('p', {}, `${a.name} (${a.student_no})`), h('div', { class: 'table-wrap' }, h('table', {},
          h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, t('col.code')), h('th', {}, t('col.status')), h('th', {}, t('col.reason')), h('th', {}, 'time'))),
          h('tbody', {}, ...a.requests.map((r) => h('tr', {}, h('td', {}, r.ticket), h('td', {}, r.code + '-' + r.section), h('td', {}, r.status), h('td', {}, reason(r.reason)), h('td', {}, r.decided_at || ''))),
            ...a.waitlist_promotions.map((p) => h('tr', {}, h('td', {}, 'W'), h('td', {}, p.code + '-' + p.section), h('td', {}, p.status + ' (' + p.cause + ')'), h('td', {}, reason(p.reason)), h('td', {}, p.decided_at))),
            ...a.drops.map((d) => h('tr', {}, h('td', {}, 'D'), h('td', {}, d.code + '-' + d.section), h('td', {}, 'dropped'), h('td', {}, ''), h('td', {}, d.dropped_at)))))));
      } catch (e) { showError(e); }
    } }, h('h2', {}, t('admin.audit')),
    h('div', { class: 'row' }, h('div', {}, h('label', { for: 'audit-no' }, t('login.no')), h('input', { type: 'text', id: 'audit-no', required: true })),
      h('button', { class: 'btn', type: 'submit' }, t('search.submit'))), h('div', { id: 'audit-out' })),
    h('div', { class: 'card' }, h('button', { class: 'btn secondary', type: 'button', id: 'export-btn', onclick: async () => {
      try {
        const res = await api('GET', '/admin/enrollments.csv', undefined, { raw: true });
        const blob = await res.blob();
        const a = h('a', { href: URL.createObjectURL(blob), download: 'enrollments.csv' });
        document.body.append(a); a.click(); a.remove();
      } catch (e) { showError(e); }
    } }, t('admin.export'))));
}

export const adminViews = {
  login,
  routes: { '#/admin': dashboard, '#/admin/import': imports, '#/admin/windows': windows, '#/admin/courses': courses },
};

export { courseTitle };
