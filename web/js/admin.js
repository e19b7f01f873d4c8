// Registrar pages: log in, live dashboard, imports with progress and the
// error report, registration windows, capacities, audits and the export.
import { api, session } from './api.js';
import { t, reason, getLang } from './i18n.js';
import { $, h, view, flash, showError, go, courseTitle, confirmDialog, note, noteError } from './app.js';
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
    h('div', { class: 'legend', id: 'rate-legend' }, h('span', {}, h('i', { class: 'swatch admitted' }), t('kpi.admitted')), h('span', {}, h('i', { class: 'swatch decided' }), t('kpi.decided'))),
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
  const fill = fillText(s.totals.enrolled, s.totals.capacity);
  const kpi = (label, value, id) => h('div', { class: 'kpi' }, h('span', { class: 'muted' }, label), h('b', { id }, value));
  kpis.replaceChildren(
    kpi(t('admin.flag'), s.open ? t('admin.flag.open') : t('admin.flag.closed'), 'kpi-open'),
    kpi(t('kpi.pending'), s.pending.toLocaleString(), 'kpi-pending'),
    kpi(t('kpi.sessions'), (s.ws_sessions || 0).toLocaleString(), 'kpi-sessions'),
    kpi(t('kpi.admitted'), s.admitted_per_sec.toFixed(1), 'kpi-admitted'),
    kpi(t('kpi.decided'), s.decided_per_sec.toFixed(1), 'kpi-decided'),
    kpi(t('kpi.enrolled'), (s.decided_by_status.enrolled || 0).toLocaleString(), 'kpi-enrolled'),
    kpi(t('kpi.rejected'), (s.decided_by_status.rejected || 0).toLocaleString(), 'kpi-rejected'),
    kpi(t('kpi.fill'), fill, 'kpi-fill'));
  $('#kpi-fill').title = t('kpi.fillOf', { e: s.totals.enrolled.toLocaleString(), c: s.totals.capacity.toLocaleString() });
  $('#kpi-fill').after(h('span', { class: 'muted small', id: 'kpi-fill-of' }, t('kpi.fillOf', { e: s.totals.enrolled.toLocaleString(), c: s.totals.capacity.toLocaleString() })));
  lineChart($('#chart-queue'), series.at, [{ values: series.pending, color: '#a15c00' }]);
  // The admitted line is wide and solid, the decided line drawn over it
  // thin and dashed: equal rates still show both.
  lineChart($('#chart-rate'), series.at, [{ values: series.admitted, color: '#1f5fbf', width: 4 }, { values: series.decided, color: '#1d7a3a', dash: '6 4', width: 2 }]);
  $('#fill').replaceChildren(
    h('thead', {}, h('tr', {}, h('th', {}, t('col.code')), h('th', {}, t('col.title')), h('th', { class: 'num' }, t('col.capacity')), h('th', { class: 'num' }, t('col.enrolled')),
      h('th', { class: 'num' }, t('col.seats')), h('th', {}, t('col.fill')), h('th', { class: 'num' }, t('nav.waitlist')))),
    h('tbody', {}, ...s.fill.map((c) => h('tr', { 'data-course-id': c.course_id }, h('td', {}, c.code + '-' + c.section), h('td', {}, c.title),
      h('td', { class: 'num cap' }, c.capacity.toLocaleString()), h('td', { class: 'num enr' }, c.enrolled.toLocaleString()),
      h('td', { class: 'num left' + (c.capacity - c.enrolled <= 0 ? ' seats-0' : '') }, Math.max(0, c.capacity - c.enrolled).toLocaleString()),
      h('td', {}, h('div', { class: 'bar-bg', role: 'progressbar', 'aria-valuemin': 0, 'aria-valuemax': 100, 'aria-valuenow': Math.round(c.fill * 100) },
        h('div', { class: 'bar', style: `width:${Math.min(100, Math.round(c.fill * 100))}%` })), h('span', { class: 'muted small' }, fillText(c.enrolled, c.capacity))),
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
    // Admitted counts only the entries that got a ticket; the refused ones
    // are listed by reason.
    const refused = Object.entries(st.refused || {}).filter(([, n]) => n > 0);
    const nRefused = refused.reduce((a, [, n]) => a + n, 0);
    draw.replaceChildren(h('p', {}, h('span', { id: 'prequeue-done', class: 'badge ok' }, t('pq.done', { a: (st.admitted || 0).toLocaleString(), t: st.total.toLocaleString(), d: secs }))),
      nRefused ? h('p', { id: 'prequeue-refused', class: 'muted' }, t('pq.refused', { n: nRefused.toLocaleString(), r: refused.map(([r, n]) => reason(r) + ' ' + n.toLocaleString()).join(' · ') })) : null);
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
    columnHelp(kind),
    h('label', { for: id + '-file' }, t(labelKey)),
    h('input', { type: 'file', id: id + '-file', accept: '.csv,text/csv', required: true }),
    kind === 'students' ? [h('label', { for: 'initial-password' }, t('admin.initpw')), h('input', { type: 'text', id: 'initial-password', value: 'enrollq-2026', autocomplete: 'off' })] : null,
    h('p', {}, h('button', { class: 'btn', type: 'submit', id: id + '-upload' }, t('admin.upload'))),
    h('div', { id: id + '-status', 'aria-live': 'polite' }));
}

// The columns of each import file (docs/IMPORT.md), in the header's order,
// and whether a value is required.
const importCols = {
  catalog: [['code', 1], ['section', 1], ['title', 1], ['title_en', 0], ['department', 1], ['professor', 0], ['credits', 1], ['capacity', 1], ['meetings', 0], ['room', 0], ['category', 0]],
  students: [['student_no', 1], ['name', 1], ['year', 1], ['department', 1], ['max_credits', 0]],
};
const importExample = {
  catalog: 'CSE4051,01,컴파일러,Compilers,컴퓨터공학과,김교수,3,40,MON 09:00-10:15;WED 09:00-10:15,공학관 101,전공선택',
  students: '202600001,홍길동,1,컴퓨터공학과,18',
};

// columnHelp lists a file's columns and links a template CSV (the header
// and one example row, with a byte-order mark so spreadsheets read Korean).
function columnHelp(kind) {
  const cols = importCols[kind];
  const csv = '\ufeff' + cols.map((c) => c[0]).join(',') + '\n' + importExample[kind] + '\n';
  const href = 'data:text/csv;charset=utf-8,' + encodeURIComponent(csv);
  return h('details', { class: 'import-help', id: kind + '-help', open: true }, h('summary', {}, t('imp.columns')),
    h('div', { class: 'table-wrap' }, h('table', { id: kind + '-columns', class: 'import-columns' },
      h('thead', {}, h('tr', {}, h('th', {}, t('col.column')), h('th', {}, t('imp.required')), h('th', {}, t('imp.rule')))),
      h('tbody', {}, ...cols.map(([name, req]) => h('tr', { 'data-column': name, 'data-required': req ? 'yes' : 'no' },
        h('td', {}, h('code', {}, name)), h('td', {}, req ? t('imp.req') : t('imp.opt')), h('td', {}, t('imp.' + kind + '.' + name))))))),
    h('p', {}, h('a', { href, download: kind === 'catalog' ? 'catalog-template.csv' : 'students-template.csv', id: kind + '-template', class: 'btn small secondary' }, t('imp.template')),
      ' ', h('span', { class: 'muted' }, t('imp.header'), ' ', h('code', { id: kind + '-header' }, cols.map((c) => c[0]).join(',')))));
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

let windowResult = ''; // what the last open/close did, shown on the card

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
    const btn = ev.target;
    const students = pq.st && pq.st.students ? pq.st.students : 0;
    const ok = await confirmDialog({
      title: t(open ? 'win.openTitle' : 'win.closeTitle'),
      body: open ? t('win.openBody') + ' ' + (students ? t('win.openDraw', { s: students.toLocaleString() }) : t('win.openNoDraw')) : t('win.closeBody'),
      cancel: t('drop.cancel'), ok: t(open ? 'admin.open' : 'admin.close'), danger: !open });
    if (!ok) return;
    btn.disabled = true;
    try {
      const r = await api('POST', '/admin/window', { open });
      const at = clock(new Date());
      windowResult = r.open
        ? t('win.opened', { at }) + (students ? ' ' + t('win.drawn', { s: students.toLocaleString() }) : '')
        : t(open ? 'win.notOpened' : 'win.closed', { at });
      await windows();
      flash(windowResult);
    } catch (e) { btn.disabled = false; showError(e); }
  };
  view('admin.windows',
    h('div', { class: 'card' }, h('h2', {}, t('admin.flag')),
      h('p', {}, t('admin.term', { t: w.term }), ' · ', h('span', { id: 'window-state', class: 'badge ' + (w.open ? 'ok' : 'bad') }, w.open ? t('admin.flag.open') : t('admin.flag.closed'))),
      h('p', {}, w.open
        ? h('button', { class: 'btn danger', type: 'button', id: 'window-close', onclick: (ev) => setFlag(false, ev) }, t('admin.close'))
        : h('button', { class: 'btn', type: 'button', id: 'window-open', onclick: (ev) => setFlag(true, ev) }, t('admin.open'))),
      h('p', { class: 'muted' }, t('admin.openNow', { y: w.open_now.join(', ') || '—' })),
      windowResult ? h('p', { id: 'window-result', class: 'badge ok', role: 'status' }, windowResult) : null),
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

// fillText is enrolled / capacity as a percentage with one decimal; never
// "0%" while anyone is enrolled.
export function fillText(enrolled, capacity) {
  if (!capacity) return enrolled ? '100%' : '—';
  const p = (100 * enrolled) / capacity;
  if (enrolled > 0 && p < 0.1) return '<0.1%';
  return (Math.round(p * 10) / 10).toLocaleString(getLang() === 'en' ? 'en-US' : 'ko-KR', { maximumFractionDigits: 1 }) + '%';
}

// The registrar's course list: search by code or title (as you type), sort
// by fill, 정원/신청/여석 per row (여석 = capacity − enrolled, as students
// see it), and the capacity edited in the row. Opening or closing a single
// section has no API yet, so the list only shows whether it is open.
const ac = { q: '', sort: 'fill-desc', hits: [], seq: 0 };
let acTimer;

function courses() {
  view('nav.admin.courses',
    h('form', { class: 'card', id: 'ac-form', role: 'search', onsubmit: (ev) => { ev.preventDefault(); loadCourses(); } },
      h('div', { class: 'row' },
        h('div', { class: 'grow' }, h('label', { for: 'ac-q' }, t('ac.q')),
          h('input', { type: 'text', id: 'ac-q', value: ac.q, autocomplete: 'off', oninput: () => { clearTimeout(acTimer); acTimer = setTimeout(loadCourses, 250); } })),
        h('div', {}, h('label', { for: 'ac-sort' }, t('ac.sort')),
          h('select', { id: 'ac-sort', onchange: () => { ac.sort = $('#ac-sort').value; if (ac.q) renderCourses(); else loadCourses(); } },
            ...['fill-desc', 'fill-asc', 'code'].map((k) => h('option', { value: k, selected: ac.sort === k }, t('ac.sort.' + k))))),
        h('button', { class: 'btn', type: 'submit', id: 'ac-search' }, t('search.submit')))),
    h('p', { id: 'ac-total', class: 'muted', 'aria-live': 'polite' }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'admin-courses', class: 'stack' })),
    h('p', { class: 'muted' }, t('ac.noSectionSwitch')));
  loadCourses();
}

async function loadCourses() {
  const q = $('#ac-q') ? $('#ac-q').value.trim() : ac.q;
  ac.q = q;
  const seq = ++ac.seq;
  let r;
  try {
    if (!q && ac.sort === 'fill-desc') {
      // No query: the fullest sections of the whole term, from the stats
      // (MariaDB), not the first page of the search.
      const st = await api('GET', '/admin/stats?top=100');
      r = { hits: st.fill.map((c) => ({ id: c.course_id, code: c.code, section: c.section, title: c.title, capacity: c.capacity, enrolled: c.enrolled })), total: st.totals.sections };
    } else {
      r = await api('GET', '/courses?size=100' + (q ? '&q=' + encodeURIComponent(q) : ''));
    }
  } catch (e) { showError(e); return; }
  if (seq !== ac.seq) return;
  ac.hits = r.hits || [];
  ac.total = r.total || ac.hits.length;
  renderCourses();
}

// As the stats count it: a section of capacity 0 is full.
const fillOf = (c) => (c.capacity ? c.enrolled / c.capacity : 1);

function renderCourses() {
  const tbl = $('#admin-courses');
  if (!tbl) return;
  const rows = [...ac.hits];
  if (ac.sort === 'code') rows.sort((a, b) => (a.code + a.section).localeCompare(b.code + b.section));
  else rows.sort((a, b) => (ac.sort === 'fill-asc' ? 1 : -1) * (fillOf(a) - fillOf(b)) || (a.code + a.section).localeCompare(b.code + b.section));
  $('#ac-total').textContent = t('ac.total', { n: rows.length.toLocaleString(), t: (ac.total || 0).toLocaleString() });
  tbl.replaceChildren(
    h('thead', {}, h('tr', {}, h('th', {}, t('col.code')), h('th', {}, t('col.title')), h('th', { class: 'num' }, t('col.capacity')), h('th', { class: 'num' }, t('col.enrolled')),
      h('th', { class: 'num' }, t('col.seats')), h('th', {}, t('col.fill')), h('th', {}, t('col.status')), h('th', {}, t('admin.newCap')))),
    h('tbody', {}, ...(rows.length ? rows.map(courseRow) : [h('tr', {}, h('td', { colspan: 8, class: 'muted' }, t('search.none')))])));
}

function courseRow(c) {
  const label = `${courseTitle(c)} (${c.code}-${c.section})`;
  const input = h('input', { type: 'number', class: 'cap-input', min: c.enrolled, max: 10000, value: c.capacity, 'aria-label': t('ac.capFor', { c: label }) });
  const save = h('button', { class: 'btn small', type: 'button', 'aria-label': t('ac.saveFor', { c: label }), onclick: () => saveCapacity(c, input, save) }, t('ac.save'));
  input.addEventListener('keydown', (ev) => { if (ev.key === 'Enter') { ev.preventDefault(); save.click(); } });
  const left = c.capacity - c.enrolled;
  return h('tr', { 'data-course-id': c.id },
    h('td', { 'data-label': t('col.code') }, c.code + '-' + c.section),
    h('td', { 'data-label': t('col.title') }, courseTitle(c)),
    h('td', { class: 'num cap', 'data-label': t('col.capacity') }, c.capacity.toLocaleString()),
    h('td', { class: 'num enr', 'data-label': t('col.enrolled') }, c.enrolled.toLocaleString()),
    h('td', { class: 'num left' + (left <= 0 ? ' seats-0' : ''), 'data-label': t('col.seats') }, Math.max(0, left).toLocaleString()),
    h('td', { class: 'fill', 'data-label': t('col.fill') }, fillText(c.enrolled, c.capacity)),
    h('td', { 'data-label': t('col.status') }, c.is_open === undefined ? '—' : c.is_open ? t('ac.open') : t('ac.closed')),
    h('td', { class: 'cap-edit', 'data-label': t('admin.newCap') }, input, ' ', save));
}

async function saveCapacity(c, input, btn) {
  const v = Number(input.value);
  if (!Number.isInteger(v) || v < 0 || input.value === '') { note(btn, t('ac.badCap'), false); return; }
  btn.disabled = true;
  try {
    const r = await api('PATCH', '/admin/courses/' + c.id, { capacity: v });
    Object.assign(c, { capacity: r.capacity, enrolled: r.enrolled, seats_left: r.seats_left });
    const promoted = (r.promoted || []).filter((p) => p.status === 'enrolled').length;
    const row = courseRow(c);
    btn.closest('tr').replaceWith(row);
    const nb = row.querySelector('.cap-edit button');
    nb.focus();
    note(nb, t('ac.saved', { c: r.capacity.toLocaleString(), l: r.seats_left.toLocaleString() }) + (promoted ? ' ' + t('ac.promoted', { n: promoted }) : ''));
  } catch (e) { btn.disabled = false; noteError(btn, e); }
}

// The audit: every request, waitlist promotion and drop of one student,
// newest first, in words and local time.
const p2 = (n) => String(n).padStart(2, '0');
// clock is a Date's local time as HH:MM:SS.
export const clock = (d) => `${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
// when is a time in local time: "2026. 12. 8. 09:00:01" in Korean,
// "8 Dec 2026, 09:00:01" in English.
const when = (iso) => {
  if (!iso) return '—';
  const d = new Date(iso);
  if (getLang() === 'en') return `${d.getDate()} ${d.toLocaleString('en-GB', { month: 'short' })} ${d.getFullYear()}, ${clock(d)}`;
  return `${d.getFullYear()}. ${d.getMonth() + 1}. ${d.getDate()}. ${clock(d)}`;
};

function auditStatus(status, why) {
  if (status === 'rejected' || status === 'skipped') return t('audit.' + status) + (why ? ': ' + reason(why) : '');
  return t('audit.' + status);
}

function audit() {
  view('nav.admin.audit',
    h('form', { class: 'card', id: 'audit-form', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        const a = await api('GET', '/admin/students/' + encodeURIComponent($('#audit-no').value.trim()) + '/requests');
        const rows = [
          ...a.requests.map((r) => ({ n: '#' + r.ticket, code: r.code + '-' + r.section, status: r.status, st: auditStatus(r.status, r.reason), at: r.decided_at || r.created_at, kind: t('audit.kind.request') })),
          ...a.waitlist_promotions.map((p) => ({ n: '—', code: p.code + '-' + p.section, status: p.status, st: auditStatus(p.status, p.reason), at: p.decided_at, kind: t('audit.kind.waitlist') + ' (' + t('audit.cause.' + p.cause) + ')' })),
          ...a.drops.map((d) => ({ n: '—', code: d.code + '-' + d.section, status: 'dropped', st: t('audit.dropped'), at: d.dropped_at, kind: t('audit.kind.drop') })),
        ].sort((x, y) => Date.parse(y.at) - Date.parse(x.at));
        $('#audit-out').replaceChildren(h('p', {}, `${a.name} (${a.student_no})`), h('div', { class: 'table-wrap' }, h('table', { id: 'audit-table', class: 'stack' },
          h('thead', {}, h('tr', {}, ...['audit.col.time', 'audit.col.kind', 'col.code', 'audit.col.status', 'audit.col.ticket'].map((k) => h('th', {}, t(k))))),
          h('tbody', {}, ...(rows.length ? rows.map((r) => h('tr', { 'data-status': r.status },
            h('td', {}, h('time', { datetime: r.at }, when(r.at))), h('td', {}, r.kind), h('td', {}, r.code), h('td', { class: 'audit-status' }, r.st), h('td', {}, r.n)))
            : [h('tr', {}, h('td', { colspan: 5, class: 'muted' }, t('audit.none')))])))));
      } catch (e) { showError(e); }
    } }, h('h2', {}, t('admin.audit')),
    h('div', { class: 'row' }, h('div', {}, h('label', { for: 'audit-no' }, t('login.no')), h('input', { type: 'text', id: 'audit-no', required: true })),
      h('button', { class: 'btn', type: 'submit', id: 'audit-btn' }, t('search.submit'))), h('div', { id: 'audit-out' })),
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
  routes: { '#/admin': dashboard, '#/admin/import': imports, '#/admin/windows': windows, '#/admin/courses': courses, '#/admin/audit': audit },
};

export { courseTitle };
