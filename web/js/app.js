// EnrollQ web UI: a hash-routed single page over the JSON API. No build
// step: plain ES modules. Korean by default (English switch in the header),
// keyboard-accessible (real buttons and labels, focus moves to the new
// view's heading), usable at phone width (see app.css).
import { api, session, ApiError, newKey, withRetry } from './api.js';
import { t, setLang, getLang, dayName, reason, errText } from './i18n.js';
import { tracker } from './queue.js';
import { adminViews } from './admin.js';

export const $ = (sel, root = document) => root.querySelector(sel);

// h builds an element: h('button', {class: 'btn', onclick: f}, 'text', child...).
export function h(tag, attrs = {}, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, v === true ? '' : v);
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

let flashTimer;
let flashCarry = false; // the message was set for the page being opened (go right after)
export function flash(msg, ok = true, { carry = false } = {}) {
  flashCarry = carry;
  const f = $('#flash');
  f.textContent = msg;
  f.className = 'flash ' + (ok ? 'ok' : 'err');
  f.hidden = !msg;
  clearTimeout(flashTimer);
  if (msg && ok) flashTimer = setTimeout(() => { f.hidden = true; }, 6000);
}

// note shows feedback next to the element that caused it (a button, a row's
// cell): a polite live region right after it, gone after a few seconds, at
// the next note, and when the page changes. Only one note is shown at a time.
let noteEl = null;
let noteTimer;
export function clearNote() {
  clearTimeout(noteTimer);
  if (noteEl) noteEl.remove();
  noteEl = null;
}
export function note(anchor, msg, ok = true) {
  clearNote();
  if (!anchor || !anchor.isConnected) { flash(msg, ok); return; }
  const el = h('span', { class: 'inline-note ' + (ok ? 'ok' : 'err'), role: ok ? 'status' : 'alert', 'aria-live': ok ? 'polite' : 'assertive' });
  anchor.after(el);
  noteEl = el;
  // Filled a moment after insertion so screen readers announce it.
  setTimeout(() => { if (noteEl === el) el.textContent = msg; }, 30);
  noteTimer = setTimeout(() => { if (noteEl === el) clearNote(); }, ok ? 5000 : 9000);
}

// noteError shows an API error next to anchor.
export function noteError(anchor, e) {
  if (e instanceof ApiError) note(anchor, e.status === 0 ? t('err.network') : errText(e.body), false);
  else note(anchor, String(e), false);
}

// confirmDialog asks in the page (a modal <dialog>, not window.confirm):
// resolves true for the confirm button, false for cancel or Esc. Focus goes
// to the dialog's cancel button (the safe choice) and back to the element
// that had it when the dialog closes.
export function confirmDialog({ title, body, cancel, ok, danger = true }) {
  return new Promise((resolve) => {
    const opener = document.activeElement;
    const dlg = h('dialog', { id: 'confirm-dialog', class: 'confirm', 'aria-labelledby': 'confirm-title', 'aria-describedby': 'confirm-body' },
      h('h2', { id: 'confirm-title' }, title),
      h('p', { id: 'confirm-body' }, body),
      h('div', { class: 'confirm-actions' },
        h('button', { class: 'btn secondary', type: 'button', id: 'confirm-cancel', onclick: () => done(false) }, cancel),
        h('button', { class: 'btn' + (danger ? ' danger' : ''), type: 'button', id: 'confirm-ok', onclick: () => done(true) }, ok)));
    let closed = false;
    const done = (v) => {
      if (closed) return;
      closed = true;
      if (dlg.open) dlg.close();
      dlg.remove();
      if (opener && opener.isConnected && opener.focus) opener.focus();
      resolve(v);
    };
    dlg.addEventListener('cancel', (ev) => { ev.preventDefault(); done(false); });
    document.body.append(dlg);
    dlg.showModal();
    $('#confirm-cancel', dlg).focus();
  });
}

export function showError(e) {
  if (e instanceof ApiError) flash(e.status === 0 ? t('err.network') : errText(e.body), false);
  else flash(String(e), false);
}

export function view(titleKey, ...kids) {
  const main = $('#main');
  main.replaceChildren(h('h1', { id: 'view-title', tabindex: '-1' }, t(titleKey)), ...kids.flat().filter((k) => k !== null && k !== undefined && k !== false));
  $('#view-title').focus();
  document.title = t(titleKey) + ' · EnrollQ';
}

export const hhmm = (m) => String(Math.floor(m / 60)).padStart(2, '0') + ':' + String(m % 60).padStart(2, '0');

// meetingsText renders "MON 09:00-10:15;WED ..." in the current language.
export function meetingsText(s) {
  if (!s) return '—';
  const keys = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT', 'SUN'];
  return s.split(';').map((m) => {
    const [d, time] = m.trim().split(' ');
    const i = keys.indexOf(d);
    return (i >= 0 ? dayName(i) : d) + ' ' + (time || '');
  }).join(', ');
}

const courseTitle = (c) => (getLang() === 'en' && c.title_en ? c.title_en : c.title);
export { courseTitle };

// ---------- student views ----------

function loginView() {
  const form = h('form', { class: 'card narrow', id: 'login-form', onsubmit: async (ev) => {
    ev.preventDefault();
    try {
      const r = await api('POST', '/auth/login', { student_no: $('#student-no').value.trim(), password: $('#password').value });
      session.set(r.token, 'student', r.student_no);
      flash('');
      // Still the initial password: nothing but changing it (the api
      // answers 403 password_change_required everywhere else).
      if (r.must_change_password) { mustChange = true; go('#/change-password'); return; }
      go('#/search');
    } catch (e) { showError(e); }
  } },
  h('label', { for: 'student-no' }, t('login.no')),
  h('input', { type: 'text', id: 'student-no', autocomplete: 'username', inputmode: 'numeric', required: true }),
  h('label', { for: 'password' }, t('login.pw')),
  h('input', { type: 'password', id: 'password', autocomplete: 'current-password', required: true }),
  h('p', {}, h('button', { class: 'btn', type: 'submit', id: 'login-btn' }, t('login.submit'))),
  h('p', { class: 'muted' }, t('login.toAdmin'), ' ', h('a', { href: '#/admin/login' }, t('login.admin'))));
  // Single sign-on (GET /auth/sso says whether it is on): the university's
  // login page, back through /auth/sso/callback to #sso_code= (ssoReturn).
  const sso = h('div', { class: 'card narrow', id: 'sso-box', hidden: true },
    h('p', { class: 'muted' }, t('login.or')),
    h('p', {}, h('button', { class: 'btn', type: 'button', id: 'sso-btn', onclick: () => { location.href = ssoStart; } }, t('login.sso'))));
  view('login.title', form, sso);
  $('#student-no').focus();
  api('GET', '/auth/sso').then((r) => {
    if (r && r.enabled) { ssoStart = r.start_url || 'api/v1/auth/sso/start'; sso.hidden = false; }
  }).catch(() => {});
}

let ssoStart = 'api/v1/auth/sso/start';

// ssoReturn finishes a single sign-on: the callback sent the browser to
// /#sso_code=<one-time code>; the code leaves the address bar at once and is
// exchanged for the same token a password login gives.
async function ssoReturn() {
  const m = /^#sso_code=([A-Za-z0-9_-]+)$/.exec(location.hash);
  if (!m) return false;
  history.replaceState(null, '', location.pathname + location.search + '#/login');
  try {
    const r = await api('POST', '/auth/sso/exchange', { code: m[1] });
    session.set(r.token, 'student', r.student_no);
    flash('');
    go('#/search');
  } catch (e) { route(); showError(e); }
  return true;
}

const searchState = { q: '', department: '', category: '', credits: '', day: '', open: false, next: '' };

// The query and filters live in the address (#/search?q=…&dept=…), so a
// reload, Back or a shared link shows the same search.
const hashKeys = [['q', 'q'], ['department', 'dept'], ['category', 'cat'], ['credits', 'credits'], ['day', 'day']];
function searchHash() {
  const p = new URLSearchParams();
  for (const [k, hk] of hashKeys) if (searchState[k]) p.set(hk, searchState[k]);
  if (searchState.open) p.set('open', '1');
  const qs = p.toString();
  return '#/search' + (qs ? '?' + qs : '');
}
function searchFromHash() {
  const i = location.hash.indexOf('?');
  if (i < 0) return;
  const p = new URLSearchParams(location.hash.slice(i + 1));
  for (const [k, hk] of hashKeys) searchState[k] = p.get(hk) || '';
  searchState.open = p.get('open') === '1';
}

// mine is what the student already has (enrolled, waitlisted, in the cart),
// read when a student page opens, so rows can say so.
const mine = { enr: new Map(), wl: new Map(), cart: new Set(), at: 0 };
async function loadMine({ cart = true } = {}) {
  const at = Date.now();
  const [e, w, c] = await Promise.all([api('GET', '/me/enrollments'), api('GET', '/me/waitlist'), cart ? api('GET', '/cart') : null]);
  mine.enr = new Map(e.enrollments.map((x) => [x.id, x]));
  mine.wl = new Map(w.waitlist.map((x) => [x.id, x]));
  if (c) mine.cart = new Set(c.items.map((x) => x.id));
  mine.at = at;
}

// courseLabel names a section for buttons' accessible names:
// "자료구조 (CSE2010-01)".
const courseLabel = (c) => `${courseTitle(c)} (${c.code}-${c.section})`;
const ariaFor = (key, c) => t(key) + ': ' + courseLabel(c);

// stateBadge marks a section the student already has.
function stateBadge(id) {
  if (mine.enr.has(id)) return h('span', { class: 'badge ok row-state', 'data-state': 'enrolled' }, t('status.enrolled'));
  const w = mine.wl.get(id);
  if (w) return h('span', { class: 'badge wait row-state', 'data-state': 'waitlisted' }, t('state.waitlisted', { p: w.position }));
  return null;
}

function searchView() {
  searchFromHash();
  if (location.hash.split('?')[0] === '#/search' || location.hash === '') history.replaceState(null, '', searchHash());
  const opt = (v, label, cur) => h('option', { value: v, selected: v === cur }, label);
  const days = ['MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];
  const form = h('form', { class: 'card', id: 'search-form', role: 'search', onsubmit: (ev) => { ev.preventDefault(); runSearch(false); } },
    h('div', { class: 'row' },
      h('div', { class: 'grow' }, h('label', { for: 'q' }, t('search.q')), h('input', { type: 'text', id: 'q', value: searchState.q, autocomplete: 'off' })),
      h('div', {}, h('label', { for: 'f-dept' }, t('search.dept')), h('input', { type: 'text', id: 'f-dept', value: searchState.department, list: 'dept-list' })),
      h('div', {}, h('label', { for: 'f-cat' }, t('search.cat')), h('select', { id: 'f-cat' }, opt('', t('search.any'), searchState.category),
        ...['전공필수', '전공선택', '교양'].map((c) => opt(c, c, searchState.category)))),
      h('div', { class: 'shrink' }, h('label', { for: 'f-credits' }, t('search.credits')), h('select', { id: 'f-credits' }, opt('', t('search.any'), searchState.credits),
        ...[1, 2, 3, 4, 5, 6].map((n) => opt(String(n), String(n), searchState.credits)))),
      h('div', { class: 'shrink' }, h('label', { for: 'f-day' }, t('search.day')), h('select', { id: 'f-day' }, opt('', t('search.any'), searchState.day),
        ...days.map((d, i) => opt(d, dayName(i), searchState.day)))),
    ),
    h('div', { class: 'row', style: 'margin-top:.6rem' },
      h('label', { class: 'shrink', style: 'font-weight:400' }, h('input', { type: 'checkbox', id: 'f-open', checked: searchState.open }), ' ', t('search.open')),
      h('button', { class: 'btn', type: 'submit', id: 'search-btn' }, t('search.submit'))),
    h('datalist', { id: 'dept-list' }, ...['경영학과', '경제학과', '교양학부', '국어국문학과', '기계공학과', '수학과', '심리학과', '영어영문학과', '전자공학과', '컴퓨터공학과'].map((d) => h('option', { value: d }))));
  view('search.title', form, h('p', { id: 'search-total', class: 'muted', 'aria-live': 'polite' }),
    h('div', { class: 'table-wrap' }, h('table', { id: 'results', class: 'stack' },
      h('thead', {}, h('tr', {}, h('th', {}, t('col.code')), h('th', {}, t('col.title')), h('th', { class: 'hide-sm' }, t('col.prof')),
        h('th', { class: 'num' }, t('col.credits')), h('th', {}, t('col.time')), h('th', { class: 'num' }, t('col.seats')), h('th', {}, t('col.action')))),
      h('tbody', { id: 'results-body' }))),
    h('p', {}, h('button', { class: 'btn secondary', type: 'button', id: 'more-btn', hidden: true, onclick: () => runSearch(true) }, t('search.more'))));
  mineReady = loadMine().catch(() => {});
  runSearch(false);
}

let searchSeq = 0;
let mineReady = Promise.resolve();

async function runSearch(more) {
  if (!more) {
    Object.assign(searchState, { q: $('#q').value.trim(), department: $('#f-dept').value.trim(), category: $('#f-cat').value,
      credits: $('#f-credits').value, day: $('#f-day').value, open: $('#f-open').checked, next: '' });
    if (location.hash.split('?')[0] === '#/search') history.replaceState(null, '', searchHash());
  }
  const p = new URLSearchParams();
  for (const [k, v] of [['q', searchState.q], ['department', searchState.department], ['category', searchState.category], ['credits', searchState.credits], ['days', searchState.day]]) if (v) p.set(k, v);
  if (searchState.open) p.set('open', 'true');
  p.set('size', '20');
  if (more && searchState.next) p.set('after', searchState.next);
  const seq = ++searchSeq;
  try {
    const r = await api('GET', '/courses?' + p.toString());
    const body = $('#results-body');
    if (!body || seq !== searchSeq) return; // a newer search is on its way
    if (!more) body.replaceChildren();
    if (!more) await mineReady;
    if (seq !== searchSeq || !body.isConnected) return;
    for (const c of r.hits) body.append(courseRow(c));
    searchState.next = r.next || '';
    $('#more-btn').hidden = !r.next;
    $('#search-total').textContent = r.total ? t('search.total', { n: r.total }) : t('search.none');
  } catch (e) { showError(e); }
}

function courseRow(c) {
  const left = c.seats_left;
  const full = left <= 0 || !c.is_open;
  const st = mine.enr.has(c.id) ? 'enrolled' : mine.wl.has(c.id) ? 'waitlisted' : mine.cart.has(c.id) ? 'cart' : null;
  const actions = h('td', { class: 'actions' });
  const badge = stateBadge(c.id);
  if (badge) actions.append(badge, ' ');
  if (!mine.enr.has(c.id)) {
    actions.append(mine.cart.has(c.id)
      ? h('span', { class: 'badge row-cart', 'data-state': 'cart' }, t('state.inCart'))
      : h('button', { class: 'btn small secondary add-cart', type: 'button', 'aria-label': ariaFor('btn.addCart', c), onclick: (ev) => addCart(c, ev.currentTarget) }, t('btn.addCart')), ' ');
    if (!mine.wl.has(c.id)) {
      actions.append(full
        ? h('button', { class: 'btn small secondary join-wl', type: 'button', 'aria-label': ariaFor('btn.waitlist', c), onclick: (ev) => joinWaitlist(c, ev.currentTarget) }, t('btn.waitlist'))
        : h('button', { class: 'btn small enroll-now', type: 'button', 'aria-label': ariaFor('btn.enroll', c), onclick: (ev) => enrollNow(c, ev.currentTarget) }, t('btn.enroll')));
    }
  }
  return h('tr', { 'data-course-id': c.id, 'data-state': st },
    h('td', {}, c.code + '-' + c.section),
    h('td', {}, courseTitle(c), h('div', { class: 'muted' }, c.department + (c.category ? ' · ' + c.category : ''))),
    h('td', { class: 'hide-sm' }, c.professor),
    h('td', { class: 'num' }, c.credits),
    h('td', {}, meetingsText(c.meetings), h('div', { class: 'muted' }, c.room)),
    h('td', { class: 'num' + (full ? ' seats-0' : '') }, left + ' / ' + c.capacity),
    actions);
}

// rerow redraws a search row after the student's state changed and returns
// where feedback goes (the row's action cell's last element).
function rerow(btn, c) {
  const tr = btn && btn.closest('tr');
  if (!tr || !tr.isConnected || !tr.closest('#results-body')) return btn;
  const had = document.activeElement === btn;
  const fresh = courseRow(c);
  tr.replaceWith(fresh);
  const cell = fresh.querySelector('td.actions');
  // Keep the keyboard where it was: on the row's next button, else its cell.
  if (had) {
    const next = cell.querySelector('button');
    if (next) next.focus(); else { cell.tabIndex = -1; cell.focus(); }
  }
  return cell.lastElementChild || fresh;
}

async function addCart(c, btn) {
  clearNote();
  try {
    await api('POST', '/cart', { course_id: c.id });
    mine.cart.add(c.id);
    note(rerow(btn, c), t('cart.added'));
  } catch (e) { noteError(btn, e); }
}

async function joinWaitlist(c, btn) {
  clearNote();
  try {
    const r = await api('POST', '/waitlist', { course_id: c.id });
    mine.wl.set(c.id, { id: c.id, position: r.position });
    note(rerow(btn, c), t('wl.joined', { p: r.position }));
  } catch (e) { noteError(btn, e); }
}

// whileOpening calls call again while the api answers 503 opening (the
// pre-queue is being drawn at the opening; nothing was queued), after its
// Retry-After with jitter, at most 10 times.
async function whileOpening(call) {
  for (let i = 0; ; i++) {
    try {
      return await call();
    } catch (e) {
      if (!(e instanceof ApiError) || e.code !== 'opening' || i >= 10) throw e;
      flash(t('queue.opening'));
      await new Promise((res) => setTimeout(res, 1000 * (e.retryAfter || 1) * (1 + Math.random())));
    }
  }
}

// admission sends one click's request (POST /enrollments or /cart/register)
// under one Idempotency-Key, the same on every retry: lost answers, 502, 503
// and 504 are retried with back-off (withRetry) while the button and the
// flash say "retrying", and 503 opening waits for the draw (whileOpening).
// btn is disabled meanwhile and shows the state.
async function admission(path, body, btn) {
  const key = newKey();
  const label = btn && btn.textContent;
  if (btn) { btn.disabled = true; btn.setAttribute('aria-busy', 'true'); btn.textContent = t('btn.sending'); }
  try {
    return await whileOpening(() => withRetry(
      () => api('POST', path, body, { headers: { 'Idempotency-Key': key }, timeout: 30000 }),
      { onRetry: (n, max) => {
        if (btn) btn.textContent = t('btn.retrying');
        flash(t('net.retrying', { n, max }));
      } }));
  } finally {
    if (btn) { btn.disabled = false; btn.removeAttribute('aria-busy'); btn.textContent = label; }
  }
}

// Clicks in flight by course id: a second click on a section while the
// first is still being sent (or retried) sends nothing, so one click is one
// key.
const sending = new Set();

async function enrollNow(c, btn) {
  if (sending.has(c.id)) return;
  sending.add(c.id);
  try {
    const r = await admission('/enrollments', { course_id: c.id }, btn);
    const names = { course_id: c.id, code: c.code, section: c.section, title: c.title, title_en: c.title_en, at: new Date().toISOString() };
    if (r.status === 'prequeued') {
      // Before the opening: an entry without a place yet; the student may
      // add more sections, so the search stays on screen.
      tracker.add([{ request_id: 0, ...names, status: 'prequeued', pre: true }]);
      flash(t('prequeue.added', { n: r.entries }));
      note(btn, t('status.prequeued'));
      return;
    }
    tracker.add([{ request_id: r.request_id, ...names, status: 'queued', position: r.position }], r.ws_url);
    go('#/queue');
  } catch (e) {
    noteError(btn, e);
  } finally {
    sending.delete(c.id);
  }
}

async function cartView() {
  view('cart.title', h('p', { class: 'muted' }, t('loading')));
  let r;
  try { [r] = await Promise.all([api('GET', '/cart'), loadMine({ cart: false })]); } catch (e) { showError(e); return; }
  if ((location.hash || '').split('?')[0] !== '#/cart') return; // the student moved on
  const items = r.items;
  mine.cart = new Set(items.map((c) => c.id));
  if (!items.length) { view('cart.title', h('p', { id: 'cart-empty' }, t('cart.empty'), ' ', h('a', { href: '#/search' }, t('nav.search')))); return; }
  const move = async (i, d, btn) => {
    const ids = items.map((x) => x.id);
    [ids[i], ids[i + d]] = [ids[i + d], ids[i]];
    try { await api('PUT', '/cart', { course_ids: ids }); await cartView(); } catch (e) { noteError(btn, e); }
  };
  const rows = items.map((c, i) => {
    const enrolled = mine.enr.has(c.id);
    const wl = mine.wl.get(c.id);
    const full = c.seats_left <= 0 || c.is_open === false;
    return h('tr', { 'data-course-id': c.id, 'data-state': enrolled ? 'enrolled' : wl ? 'waitlisted' : null },
      h('td', { class: 'num' }, i + 1), h('td', {}, c.code + '-' + c.section), h('td', {}, courseTitle(c)), h('td', { class: 'num' }, c.credits),
      h('td', {}, meetingsText(c.meetings)), h('td', { class: 'num' + (c.seats_left <= 0 ? ' seats-0' : '') }, c.seats_left + ' / ' + c.capacity),
      h('td', { class: 'actions' },
        stateBadge(c.id), stateBadge(c.id) ? ' ' : null,
        !enrolled && !wl ? (full
          ? h('button', { class: 'btn small secondary join-wl', type: 'button', 'aria-label': ariaFor('btn.waitlist', c), onclick: (ev) => joinWaitlist(c, ev.currentTarget) }, t('btn.waitlist'))
          : h('button', { class: 'btn small enroll-now', type: 'button', 'aria-label': ariaFor('btn.enroll', c), onclick: (ev) => enrollNow(c, ev.currentTarget) }, t('btn.enroll'))) : null, ' ',
        h('button', { class: 'btn small secondary', type: 'button', disabled: i === 0, 'aria-label': ariaFor('btn.up', c), onclick: (ev) => move(i, -1, ev.currentTarget) }, '↑'), ' ',
        h('button', { class: 'btn small secondary', type: 'button', disabled: i === items.length - 1, 'aria-label': ariaFor('btn.down', c), onclick: (ev) => move(i, 1, ev.currentTarget) }, '↓'), ' ',
        h('button', { class: 'btn small secondary remove-cart', type: 'button', 'aria-label': ariaFor('btn.remove', c), onclick: async (ev) => {
          const btn = ev.currentTarget;
          try {
            await api('DELETE', '/cart/' + c.id);
            await cartView();
            note($('#cart-table') || $('#cart-empty'), t('cart.removed'));
          } catch (e) { noteError(btn, e); }
        } }, t('btn.remove'))));
  });
  // Sections already enrolled are not sent again (nor shown as refused).
  const todo = items.filter((c) => !mine.enr.has(c.id));
  view('cart.title',
    h('p', {}, t('cart.credits', { n: r.credits })),
    h('div', { class: 'table-wrap' }, h('table', { id: 'cart-table', class: 'stack' }, h('thead', {}, h('tr', {}, h('th', { class: 'num' }, '#'), h('th', {}, t('col.code')), h('th', {}, t('col.title')),
      h('th', { class: 'num' }, t('col.credits')), h('th', {}, t('col.time')), h('th', { class: 'num' }, t('col.seats')), h('th', {}, ''))), h('tbody', {}, rows))),
    todo.length < items.length ? h('p', { class: 'muted', id: 'cart-skip' }, t('cart.skipEnrolled', { n: items.length - todo.length })) : null,
    h('p', {}, h('button', { class: 'btn', type: 'button', id: 'register-all', onclick: async (ev) => {
      const btn = ev.currentTarget;
      if (!todo.length) { note(btn, t('cart.allEnrolled')); return; }
      if (sending.has('cart')) return; // one registration (one key) at a time
      sending.add('cart');
      try {
        const res = await admission('/cart/register', undefined, btn);
        const byId = Object.fromEntries(items.map((c) => [c.id, c]));
        // An already-enrolled section (enrolled in the meantime, e.g. from
        // the waitlist) is not a refusal: it is left out here and shown as
        // enrolled on the requests screen.
        const results = res.results.filter((x) => !(x.status === 'error' && x.error && x.error.code === 'already_enrolled'));
        tracker.add(results.map((x) => {
          const c = byId[x.course_id] || {};
          const status = x.status === 'queued' || x.status === 'prequeued' ? x.status : 'error';
          return { request_id: x.request_id || 0, course_id: x.course_id, code: c.code, section: c.section, title: c.title, title_en: c.title_en,
            status, position: x.position, error: x.error, pre: status === 'prequeued' || undefined, at: new Date().toISOString() };
        }), res.ws_url);
        const pre = res.results.filter((x) => x.status === 'prequeued').length;
        if (pre) flash(t('prequeue.addedCart', { n: pre }), true, { carry: true });
        go('#/queue');
      } catch (e) { noteError(btn, e); } finally { sending.delete('cart'); }
    } }, t('cart.register'))));
}

async function queueView() {
  view('queue.title', h('p', { id: 'queue-mode', class: 'muted', 'aria-live': 'polite' }), h('div', { id: 'queue-list', 'aria-live': 'polite' }));
  tracker.onChange = renderQueue;
  renderQueue();
  await tracker.resume();
  await refreshMine();
}

// refreshMine rereads the enrollments and waitlists the requests screen
// folds in (a drop, a waitlist enrollment), then redraws.
let mineTimer = null;
async function refreshMine() {
  try { await loadMine({ cart: false }); } catch (_) { /* shown as the requests say */ }
  if ($('#queue-list')) renderQueue();
}

const fmtTime = (iso) => {
  const d = new Date(iso);
  if (isNaN(d)) return '';
  return d.toLocaleString(getLang() === 'en' ? 'en-US' : 'ko-KR', { month: 'numeric', day: 'numeric', hour: 'numeric', minute: '2-digit', second: '2-digit' });
};

// queueRows is one row per course, its latest state: the newest tracked
// request, corrected by what the student has now (an enrolled request whose
// section was dropped since, a refused one that the waitlist enrolled, one
// now waiting on the waitlist), plus enrollments and waitlist places no
// tracked request explains. Newest first.
function queueRows() {
  const when = (it) => it.decided_at || it.at || '';
  const items = tracker.items().sort((a, b) => (when(b) ? Date.parse(when(b)) : Infinity) - (when(a) ? Date.parse(when(a)) : Infinity)
    || (b.request_id || 0) - (a.request_id || 0));
  const rows = new Map();
  for (const it of items) if (!rows.has(it.course_id)) rows.set(it.course_id, { ...it, state: it.status, time: when(it) });
  const loaded = mine.at > 0;
  for (const r of rows.values()) {
    const e = mine.enr.get(r.course_id);
    const w = mine.wl.get(r.course_id);
    const pending = r.status === 'queued' || r.status === 'prequeued';
    if (!loaded || pending) continue;
    if (e) {
      if (r.status !== 'enrolled') { r.state = 'enrolled'; r.time = e.enrolled_at; }
      r.via = e.via;
    } else if (r.status === 'enrolled' && mine.at > (r.seen || 0)) r.state = 'dropped';
    else if (w) { r.state = 'waitlisted'; r.wl = w; }
  }
  if (loaded) {
    for (const e of mine.enr.values()) {
      if (!rows.has(e.id)) rows.set(e.id, { course_id: e.id, code: e.code, section: e.section, title: e.title, title_en: e.title_en, state: 'enrolled', via: e.via, time: e.enrolled_at });
    }
    for (const w of mine.wl.values()) {
      if (!rows.has(w.id)) rows.set(w.id, { course_id: w.id, code: w.code, section: w.section, title: w.title, title_en: w.title_en, state: 'waitlisted', wl: w, time: w.joined_at });
    }
  }
  const key = (r) => (r.state === 'queued' || r.state === 'prequeued' || !r.time ? Infinity : Date.parse(r.time) || 0);
  return [...rows.values()].sort((a, b) => key(b) - key(a) || (b.request_id || 0) - (a.request_id || 0));
}

function renderQueue() {
  const list = $('#queue-list');
  if (!list) { tracker.onChange = null; return; }
  // A result came in after the enrollments were read: read them again.
  if (tracker.items().some((x) => (x.seen || 0) >= mine.at) && !mineTimer) {
    mineTimer = setTimeout(() => { mineTimer = null; refreshMine(); }, 300);
  }
  const drawOnly = !tracker.pending().length && tracker.waitingDraw().length;
  $('#queue-mode').textContent = drawOnly ? t('queue.drawPolling')
    : tracker.mode === 'ws' ? t('queue.live') : tracker.mode === 'poll' ? t('queue.polling') : '';
  const items = queueRows();
  if (!items.length) { list.replaceChildren(h('p', {}, t('queue.none'))); return; }
  list.replaceChildren(...items.map((it) => {
    const st = it.state;
    const cls = st === 'enrolled' ? 'ok' : st === 'queued' || st === 'prequeued' || st === 'waitlisted' ? 'wait' : st === 'dropped' ? '' : 'bad';
    const detail = st === 'queued'
      ? h('div', { class: 'queue-now' }, h('div', { class: 'muted' }, t('queue.position')), h('span', { class: 'queue-pos', 'data-position': it.position }, it.position ?? '…'),
        it.ahead !== undefined ? h('div', { class: 'muted' }, t('queue.ahead', { n: it.ahead }) + (it.eta ? ' · ' + t('queue.eta', { s: it.eta }) : '')) : null)
      : st === 'prequeued' ? h('div', { class: 'muted queue-draw' }, t('queue.prequeued'))
        : st === 'enrolled' ? (it.via === 'waitlist' ? h('div', { class: 'muted' }, t('enr.via.waitlist')) : null)
          : st === 'dropped' ? h('div', { class: 'muted' }, t('queue.droppedHint'))
            : st === 'waitlisted' ? h('div', { class: 'muted' }, t('wl.position', { p: it.wl.position, n: it.wl.length ?? '…' }))
              : it.pre && it.reason ? h('div', { class: 'queue-draw' }, t('queue.drawRefused', { r: reason(it.reason) }))
                : h('div', {}, it.reason ? reason(it.reason) : it.error ? errText(it.error) : '');
    const title = (it.code ? it.code + '-' + it.section + ' ' : '') + (courseTitle(it) || '');
    return h('div', { class: 'card queue-item', 'data-request-id': it.request_id || null, 'data-course-id': it.course_id, 'data-status': st, 'data-prequeue': it.pre ? 'true' : null },
      h('div', {}, h('b', {}, title), ' ',
        h('span', { class: 'badge ' + cls + ' status' }, t('status.' + st)),
        it.time && st !== 'queued' && st !== 'prequeued' ? h('time', { class: 'muted queue-time', datetime: it.time }, ' ' + fmtTime(it.time)) : null),
      detail,
      st === 'queued' && it.request_id ? h('button', { class: 'btn small secondary', type: 'button', 'aria-label': t('btn.cancel') + ': ' + title, onclick: () => tracker.cancel(it.request_id).catch(showError) }, t('btn.cancel')) : null);
  }));
}

async function timetableView() {
  let tt;
  try { tt = await api('GET', '/me/timetable'); } catch (e) { showError(e); return; }
  if (!tt.slots.length && !tt.unplaced.length) { view('tt.title', h('p', { id: 'tt-empty' }, t('tt.empty'))); return; }
  const days = tt.days.length;
  const step = 30;
  const rows = (tt.end_min - tt.start_min) / step;
  const grid = h('div', { class: 'tt', id: 'timetable', role: 'table', 'aria-label': t('tt.title'),
    style: `grid-template-columns: 3.2rem repeat(${days}, 1fr); grid-template-rows: auto repeat(${rows}, 1.4rem);` });
  grid.append(h('div', { class: 'hd', role: 'columnheader' }, ''));
  tt.days.forEach((d, i) => grid.append(h('div', { class: 'hd', role: 'columnheader', style: `grid-column:${i + 2};grid-row:1` }, dayName(i))));
  for (let r = 0; r < rows; r++) {
    const m = tt.start_min + r * step;
    grid.append(h('div', { class: 'hour', style: `grid-column:1;grid-row:${r + 2}` }, m % 60 === 0 ? hhmm(m) : ''));
    for (let d = 0; d < days; d++) grid.append(h('div', { class: 'cell', style: `grid-column:${d + 2};grid-row:${r + 2}` }));
  }
  for (const s of tt.slots) {
    const r0 = Math.floor((s.start_min - tt.start_min) / step) + 2;
    const r1 = Math.ceil((s.end_min - tt.start_min) / step) + 2;
    const hue = (s.course_id * 67) % 360;
    grid.append(h('div', { class: 'block', role: 'cell', 'data-course-id': s.course_id,
      style: `grid-column:${s.day + 2};grid-row:${r0} / ${r1};background:hsl(${hue} 55% 42%)`,
      title: `${s.code}-${s.section} ${s.title} ${hhmm(s.start_min)}-${hhmm(s.end_min)} ${s.room}` },
    h('b', {}, getLang() === 'en' && s.title_en ? s.title_en : s.title), h('br'), `${hhmm(s.start_min)}–${hhmm(s.end_min)}`, h('br'), s.room));
  }
  view('tt.title', h('p', {}, t('tt.credits', { n: tt.credits })), grid,
    tt.unplaced.length ? h('div', {}, h('h2', {}, t('tt.unplaced')), h('ul', {}, ...tt.unplaced.map((c) => h('li', {}, c.code + '-' + c.section + ' ' + courseTitle(c))))) : null);
}

async function enrollmentsView() {
  let r;
  try { r = await api('GET', '/me/enrollments'); } catch (e) { showError(e); return; }
  if (!r.enrollments.length) { view('enr.title', h('p', { id: 'enr-empty' }, t('enr.empty'))); return; }
  let credits = r.credits;
  const creditsLine = h('p', { id: 'enr-credits' }, t('tt.credits', { n: credits }));
  // drop asks first (one mis-click must not give the seat away), then
  // leaves the row in place marked as dropped, with the feedback in it.
  const drop = async (c, btn) => {
    clearNote();
    const ok = await confirmDialog({ title: t('drop.title'), body: t('drop.body', { c: courseLabel(c) }), cancel: t('drop.cancel'), ok: t('btn.drop') });
    if (!ok || !btn.isConnected) return;
    btn.disabled = true;
    try {
      await api('DELETE', '/enrollments/' + c.id);
      const tr = btn.closest('tr');
      tr.dataset.state = 'dropped';
      const cell = btn.parentElement;
      cell.replaceChildren(h('span', { class: 'badge row-state', 'data-state': 'dropped', tabindex: '-1' }, t('status.dropped')));
      cell.firstChild.focus(); // the button is gone: focus stays in the row
      credits -= c.credits;
      creditsLine.textContent = t('tt.credits', { n: credits });
      mine.enr.delete(c.id);
      note(cell.firstChild, t('enr.dropped'));
    } catch (e) { btn.disabled = false; noteError(btn, e); }
  };
  view('enr.title', creditsLine, h('div', { class: 'table-wrap' }, h('table', { id: 'enrollments', class: 'stack' },
    h('thead', {}, h('tr', {}, h('th', {}, t('col.code')), h('th', {}, t('col.title')), h('th', { class: 'num' }, t('col.credits')), h('th', {}, t('col.time')), h('th', {}, ''))),
    h('tbody', {}, ...r.enrollments.map((c) => h('tr', { 'data-course-id': c.id },
      h('td', {}, c.code + '-' + c.section), h('td', {}, courseTitle(c), c.via === 'waitlist' ? h('div', { class: 'muted' }, t('enr.via.waitlist')) : null),
      h('td', { class: 'num' }, c.credits), h('td', {}, meetingsText(c.meetings)),
      h('td', { class: 'actions' }, h('button', { class: 'btn small danger drop-btn', type: 'button', 'aria-label': ariaFor('btn.drop', c), onclick: (ev) => drop(c, ev.currentTarget) }, t('btn.drop')))))))));
}

async function waitlistView() {
  let r;
  try { r = await api('GET', '/me/waitlist'); } catch (e) { showError(e); return; }
  const list = r.waitlist.map((w) => h('div', { class: 'card queue-item', 'data-course-id': w.id },
    h('div', {}, h('b', {}, w.code + '-' + w.section + ' ' + courseTitle(w)), h('div', { class: 'muted' }, meetingsText(w.meetings)),
      w.skipped_reason ? h('div', { class: 'muted' }, t('wl.skipped', { r: reason(w.skipped_reason) })) : null),
    h('div', {}, h('span', { class: 'queue-pos' }, w.position), ' ', h('span', { class: 'muted' }, t('wl.position', { p: w.position, n: w.length }))),
    h('button', { class: 'btn small secondary', type: 'button', 'aria-label': ariaFor('btn.leave', w), onclick: async (ev) => {
      const btn = ev.currentTarget;
      try { await api('DELETE', '/waitlist/' + w.id); await waitlistView(); note($('#view-title'), t('wl.left')); } catch (e) { noteError(btn, e); }
    } }, t('btn.leave'))));
  view('wl.title', h('p', { class: 'muted' }, t('wl.hint')), ...(list.length ? list : [h('p', {}, t('wl.empty'))]));
}

async function meView() {
  let m;
  try { m = await api('GET', '/me'); } catch (e) { showError(e); return; }
  view('me.title',
    h('div', { class: 'card' }, h('p', {}, h('b', {}, m.name), ` (${m.student_no}) · ${m.department} · ${m.year}`),
      h('p', {}, `${m.credits} / ${m.max_credits}`), h('p', {}, h('span', { class: 'badge ' + (m.registration_open ? 'ok' : 'bad') }, t(m.registration_open ? 'me.open' : 'me.closed')))),
    h('form', { class: 'card', id: 'pw-form', onsubmit: async (ev) => {
      ev.preventDefault();
      try {
        // The change revokes every older token: continue with the new one.
        const r = await api('POST', '/auth/password', { old: $('#pw-old').value, new: $('#pw-new').value });
        if (r && r.token) session.set(r.token, 'student', session.name);
        flash(t('me.changed')); ev.target.reset();
      } catch (e) { showError(e); }
    } }, h('h2', {}, t('me.pw')),
    h('label', { for: 'pw-old' }, t('me.old')), h('input', { type: 'password', id: 'pw-old', autocomplete: 'current-password', required: true }),
    h('label', { for: 'pw-new' }, t('me.new')), h('input', { type: 'password', id: 'pw-new', autocomplete: 'new-password', minlength: 8, required: true }),
    h('p', {}, h('button', { class: 'btn', type: 'submit' }, t('me.save')))));
}

// mustChange: the session was opened with the initial password.
let mustChange = false;

// changePasswordView: the first login with the initial password (imported
// students) must choose a new password before anything else.
function changePasswordView() {
  view('pw.title',
    h('form', { class: 'card narrow', id: 'must-change-form', onsubmit: async (ev) => {
      ev.preventDefault();
      if ($('#mc-new').value !== $('#mc-again').value) { flash(t('pw.mismatch'), false); return; }
      try {
        const r = await api('POST', '/auth/password', { old: $('#mc-old').value, new: $('#mc-new').value });
        session.set(r.token, 'student', session.name);
        mustChange = false;
        flash(t('me.changed'), true, { carry: true });
        go('#/search');
      } catch (e) { showError(e); }
    } },
    h('p', {}, t('pw.intro')),
    h('label', { for: 'mc-old' }, t('me.old')), h('input', { type: 'password', id: 'mc-old', autocomplete: 'current-password', required: true }),
    h('label', { for: 'mc-new' }, t('me.new')), h('input', { type: 'password', id: 'mc-new', autocomplete: 'new-password', minlength: 8, required: true }),
    h('label', { for: 'mc-again' }, t('pw.again')), h('input', { type: 'password', id: 'mc-again', autocomplete: 'new-password', minlength: 8, required: true }),
    h('p', {}, h('button', { class: 'btn', type: 'submit', id: 'mc-btn' }, t('me.save')))));
  $('#mc-old').focus();
}

// ---------- router ----------

const studentRoutes = {
  '#/search': searchView, '#/cart': cartView, '#/queue': queueView, '#/timetable': timetableView,
  '#/enrollments': enrollmentsView, '#/waitlist': waitlistView, '#/me': meView,
};

export function go(hash) {
  if (location.hash === hash) route(); else location.hash = hash;
}

function nav() {
  const el = $('#nav');
  const cur = (location.hash || '#/').split('?')[0];
  const link = (href, key) => h('a', { href, 'aria-current': cur === href ? 'page' : null }, t(key));
  const logout = h('a', { href: '#/login', id: 'logout', onclick: () => { session.clear(); tracker.reset(); } }, t('nav.logout'));
  if (session.kind === 'student') {
    el.replaceChildren(link('#/search', 'nav.search'), link('#/cart', 'nav.cart'), link('#/queue', 'nav.queue'), link('#/timetable', 'nav.timetable'),
      link('#/enrollments', 'nav.enrollments'), link('#/waitlist', 'nav.waitlist'), link('#/me', 'nav.me'), logout);
  } else if (session.kind === 'admin') {
    el.replaceChildren(link('#/admin', 'nav.admin.dashboard'), link('#/admin/import', 'nav.admin.import'), link('#/admin/windows', 'nav.admin.windows'),
      link('#/admin/courses', 'nav.admin.courses'), link('#/admin/audit', 'nav.admin.audit'), logout);
  } else el.replaceChildren();
  $('#who').textContent = session.name;
  for (const n of document.querySelectorAll('[data-i18n]')) n.textContent = t(n.dataset.i18n);
  $('#skip-link').textContent = t('skip');
  const tog = $('#lang-toggle');
  tog.textContent = getLang() === 'ko' ? 'English' : '한국어';
  tog.lang = getLang() === 'ko' ? 'en' : 'ko';
}

function route() {
  const hash = (location.hash || '#/').split('?')[0];
  if (hash !== '#/queue') tracker.onChange = null;
  // Feedback belongs to the page it was given on.
  if (!flashCarry) $('#flash').hidden = true;
  flashCarry = false;
  clearNote();
  const dlg = $('#confirm-dialog');
  if (dlg) dlg.querySelector('#confirm-cancel').click();
  nav();
  if (hash.startsWith('#/admin')) {
    if (hash === '#/admin/login' || session.kind !== 'admin') return adminViews.login();
    return (adminViews.routes[hash] || adminViews.routes['#/admin'])();
  }
  if (session.kind !== 'student') return loginView();
  if (mustChange || hash === '#/change-password') return changePasswordView();
  (studentRoutes[hash] || searchView)();
}

window.addEventListener('hashchange', route);
// A session opened with the initial password (e.g. after a reload): only
// the password change is open.
window.addEventListener('eq:must-change', () => { if (!mustChange) { mustChange = true; go('#/change-password'); } });
window.addEventListener('eq:logout', () => { tracker.reset(); go(location.hash.startsWith('#/admin') ? '#/admin/login' : '#/login'); });
window.addEventListener('DOMContentLoaded', () => {
  setLang(getLang());
  $('#lang-toggle').addEventListener('click', () => { setLang(getLang() === 'ko' ? 'en' : 'ko'); route(); });
  ssoReturn().then((sso) => { if (!sso) route(); });
});
