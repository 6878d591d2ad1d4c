// nsqadmin page behaviour: live refresh of the server-rendered figures,
// admin actions behind a confirmation dialog, and the live charts and
// counter (charts.js, counter.js). No framework, no build step.
import { LiveCharts } from './charts.js';
import { Counter } from './counter.js';

const meta = (name) => document.querySelector(`meta[name="nsqadmin-${name}"]`)?.content ?? '';
const base = meta('base');
const refreshMS = Number(meta('refresh')) || 5000;
const chartMS = Number(meta('chart')) || 2000;
const page = document.body.dataset.page;

// ---- live state ------------------------------------------------------------

const LIVE_KEY = 'nsqx:live';
let live = sessionStorage.getItem(LIVE_KEY) !== 'off';
const listeners = [];

export function isLive() { return live; }
export function onLiveChange(fn) { listeners.push(fn); }

function showLive() {
  const b = document.getElementById('live-toggle');
  if (b) {
    b.setAttribute('aria-pressed', String(live));
    b.querySelector('.label').textContent = live ? 'live' : 'paused';
  }
}

function setLive(on) {
  live = on;
  sessionStorage.setItem(LIVE_KEY, on ? 'on' : 'off');
  showLive();
  for (const fn of listeners) fn(on);
  if (on) scheduleRefresh(0);
}

// ---- toasts ----------------------------------------------------------------

export function toast(text, kind = 'ok', ms = 6000) {
  const el = document.createElement('div');
  el.className = `toast ${kind}`;
  el.textContent = text;
  document.getElementById('flash').append(el);
  setTimeout(() => el.remove(), ms);
}

// ---- refreshing the page in place ----------------------------------------

let refreshTimer = 0;
let refreshing = false;

function busy() {
  if (document.hidden || !live || refreshing) return true;
  if (document.getElementById('confirm')?.open) return true;
  // Do not wipe what someone is typing or selecting.
  const a = document.activeElement;
  if (a && (a.tagName === 'INPUT' || a.tagName === 'TEXTAREA')) return true;
  if ([...document.querySelectorAll('#body input')].some((i) => i.value !== '')) return true;
  const sel = window.getSelection();
  if (sel && !sel.isCollapsed && document.getElementById('body')?.contains(sel.anchorNode)) return true;
  return false;
}

function scheduleRefresh(ms = refreshMS) {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(refresh, ms);
}

// refresh fetches the page's current figures (just its live blocks) and
// swaps them in, keeping the charts, scroll position and dialog.
export async function refresh(force = false) {
  if (page === 'counter' || (!force && busy())) {
    scheduleRefresh();
    return;
  }
  refreshing = true;
  const toggle = document.getElementById('live-toggle');
  try {
    const resp = await fetch(location.href, { headers: { 'X-NSQX-Fragment': '1' }, cache: 'no-store' });
    const html = await resp.text();
    const doc = new DOMParser().parseFromString(`<!DOCTYPE html><body>${html}</body>`, 'text/html');
    for (const fresh of doc.querySelectorAll('[data-live][id]')) {
      const old = document.getElementById(fresh.id);
      if (old) old.replaceWith(document.importNode(fresh, true));
    }
    document.body.dataset.refreshed = String(Date.now());
    toggle?.classList.toggle('stale', !resp.ok);
  } catch (err) {
    toggle?.classList.add('stale');
  } finally {
    refreshing = false;
    scheduleRefresh();
  }
}

// ---- admin actions ---------------------------------------------------------

const dialog = document.getElementById('confirm');

function confirmAction(text) {
  return new Promise((resolve) => {
    if (!dialog?.showModal) {
      resolve(window.confirm(text));
      return;
    }
    document.getElementById('confirm-text').textContent = text;
    dialog.returnValue = '';
    dialog.addEventListener('close', () => resolve(dialog.returnValue === 'ok'), { once: true });
    dialog.showModal();
    document.getElementById('confirm-cancel').focus();
  });
}

async function send(method, url, body) {
  const init = { method, headers: { Accept: 'application/json' }, credentials: 'same-origin' };
  if (body !== undefined) {
    init.headers['Content-Type'] = 'application/json';
    init.body = body;
  }
  const resp = await fetch(url, init);
  let data = {};
  try { data = await resp.json(); } catch { /* empty or non-JSON answer */ }
  return { ok: resp.ok, status: resp.status, message: data?.message ?? '' };
}

async function runAction(btn) {
  const { method, url, body, confirm: question, done, redirect } = btn.dataset;
  if (question && !(await confirmAction(question))) return;
  btn.disabled = true;
  try {
    const r = await send(method || 'POST', url, body);
    if (!r.ok) {
      toast(`Failed (${r.status}): ${r.message || 'no answer'}`, 'err', 10000);
      return;
    }
    if (r.message) toast(`${done || 'Done.'} ${r.message}`, 'warn', 12000);
    else toast(done || 'Done.', 'ok');
    if (redirect) {
      location.assign(redirect);
      return;
    }
    await refresh(true);
  } catch (err) {
    toast(`Request failed: ${err.message}`, 'err', 10000);
  } finally {
    btn.disabled = false;
  }
}

document.addEventListener('click', (e) => {
  const btn = e.target.closest('button[data-url]');
  if (!btn) return;
  e.preventDefault();
  runAction(btn);
});

document.addEventListener('submit', async (e) => {
  const form = e.target.closest('#create-form');
  if (!form) return;
  e.preventDefault();
  const topic = form.elements.topic.value.trim();
  const channel = form.elements.channel.value.trim();
  const r = await send('POST', form.dataset.url, JSON.stringify({ topic, channel }));
  if (!r.ok) {
    toast(`Create failed (${r.status}): ${r.message}`, 'err', 10000);
    return;
  }
  toast(channel ? `Created ${topic} / ${channel}.` : `Created ${topic}.`, r.message ? 'warn' : 'ok');
  if (r.message) toast(r.message, 'warn', 12000);
  form.reset();
  document.activeElement?.blur();
  await refresh(true);
});

// ---- start -------------------------------------------------------------------

document.getElementById('live-toggle')?.addEventListener('click', () => setLive(!live));
showLive();

const chartSection = document.getElementById('charts');
if (chartSection) {
  const charts = new LiveCharts(chartSection, chartMS, isLive);
  onLiveChange((on) => on && charts.poll());
  charts.start();
}

const counterEl = document.getElementById('counter');
if (counterEl) {
  const counter = new Counter(counterEl, document.getElementById('counter-rate'), chartMS, isLive);
  counter.start();
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden) scheduleRefresh(0);
});
scheduleRefresh();
window.nsqadmin = { base, refresh, toast };
