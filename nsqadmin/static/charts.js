// Live charts for the cluster, a topic, a channel or a node: message rate,
// depth and in-flight count over the last minutes. The browser polls the
// page's JSON endpoint (which asks every nsqd's /stats), computes the rate
// from successive message counts, and keeps the history in sessionStorage
// so it survives reloads and navigation. Drawn as plain SVG.

const WINDOW_MS = 10 * 60 * 1000;
const SVG = 'http://www.w3.org/2000/svg';

// extract reads {count, depth, inflight} from one answer of the endpoint.
const extract = {
  cluster: (d) => ({
    count: d.totals.message_count,
    depth: d.totals.depth + d.totals.channel_depth,
    inflight: d.totals.in_flight_count,
  }),
  topic: (d) => ({
    count: d.message_count,
    depth: d.depth + sum(d.channels, (c) => c.depth),
    inflight: sum(d.channels, (c) => c.in_flight_count),
  }),
  channel: (d) => ({ count: d.message_count, depth: d.depth, inflight: d.in_flight_count }),
  node: (d) => ({
    count: d.total_messages,
    depth: sum(d.topics, (t) => t.depth + sum(t.channels, (c) => c.depth)),
    inflight: sum(d.topics, (t) => sum(t.channels, (c) => c.in_flight_count)),
  }),
};

function sum(list, f) {
  let n = 0;
  for (const x of list || []) n += f(x);
  return n;
}

export function formatValue(v, series) {
  if (v === null || v === undefined || Number.isNaN(v)) return '–';
  if (series === 'rate') {
    if (v >= 100) return `${Math.round(v).toLocaleString('en-US')}/s`;
    return `${v.toFixed(v >= 10 ? 1 : 2)}/s`;
  }
  return Math.round(v).toLocaleString('en-US');
}

function compact(v) {
  if (v >= 1e9) return `${+(v / 1e9).toFixed(1)}G`;
  if (v >= 1e6) return `${+(v / 1e6).toFixed(1)}M`;
  if (v >= 1e3) return `${+(v / 1e3).toFixed(1)}k`;
  return `${+v.toFixed(v < 10 && v % 1 ? 1 : 0)}`;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

export class LiveCharts {
  constructor(section, intervalMS, isLive) {
    this.section = section;
    this.kind = section.dataset.kind;
    this.source = section.dataset.source;
    this.key = `nsqx:chart:${section.dataset.key}`;
    this.interval = intervalMS;
    this.isLive = isLive;
    this.figures = [...section.querySelectorAll('figure[data-series]')];
    this.hover = null; // index of the point under the pointer
    this.load();
    for (const fig of this.figures) this.bindHover(fig);
    window.addEventListener('resize', () => this.draw());
  }

  load() {
    try {
      const h = JSON.parse(sessionStorage.getItem(this.key) || 'null');
      this.points = Array.isArray(h?.points) ? h.points : [];
      this.last = h?.last ?? null;
    } catch {
      this.points = [];
      this.last = null;
    }
    this.trim(Date.now());
  }

  save() {
    try {
      sessionStorage.setItem(this.key, JSON.stringify({ points: this.points, last: this.last }));
    } catch { /* storage full: keep the history in memory only */ }
  }

  trim(now) {
    while (this.points.length && this.points[0].t < now - WINDOW_MS) this.points.shift();
  }

  start() {
    this.draw();
    this.poll();
  }

  async poll() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), this.interval);
    if (!this.isLive() || document.hidden || this.inflight) return;
    this.inflight = true;
    try {
      const resp = await fetch(this.source, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      if (!resp.ok) throw new Error(`HTTP ${resp.status}`);
      const data = await resp.json();
      this.add(Date.now(), extract[this.kind](data), Boolean(data.message));
      this.section.classList.remove('stale');
    } catch {
      this.section.classList.add('stale');
      this.add(Date.now(), null, true);
    } finally {
      this.inflight = false;
      this.draw();
      this.section.dataset.points = String(this.points.length);
    }
  }

  // add records one poll. A partial answer (a node down) or a counter
  // that went backwards leaves a gap in the rate instead of a false spike.
  add(t, v, partial) {
    let rate = null;
    if (v && this.last && !partial && v.count >= this.last.count && t > this.last.t && t - this.last.t < 5 * this.interval) {
      rate = ((v.count - this.last.count) * 1000) / (t - this.last.t);
    }
    this.last = v && !partial ? { t, count: v.count } : null;
    this.points.push({ t, rate, depth: v ? v.depth : null, inflight: v ? v.inflight : null });
    this.trim(t);
    this.save();
  }

  bindHover(fig) {
    const plot = fig.querySelector('.plot');
    plot.addEventListener('mousemove', (e) => {
      const r = plot.getBoundingClientRect();
      const now = Date.now();
      const span = this.span(now);
      const t = now - span + ((e.clientX - r.left) / r.width) * span;
      let best = -1;
      let dist = Infinity;
      this.points.forEach((p, i) => {
        const d = Math.abs(p.t - t);
        if (d < dist) { dist = d; best = i; }
      });
      this.hover = best >= 0 ? best : null;
      this.draw();
    });
    plot.addEventListener('mouseleave', () => { this.hover = null; this.draw(); });
  }

  // span is the time the x axis covers: the history kept, at least half a
  // minute, so a fresh chart is not squeezed against its right edge.
  span(now) {
    const first = this.points.length ? this.points[0].t : now;
    return Math.min(WINDOW_MS, Math.max(30 * 1000, now - first));
  }

  draw() {
    const now = Date.now();
    for (const fig of this.figures) this.drawOne(fig, fig.dataset.series, now);
  }

  drawOne(fig, series, now) {
    const plot = fig.querySelector('.plot');
    const w = Math.max(plot.clientWidth, 100);
    const h = Math.max(plot.clientHeight, 60);
    const top = 6;
    const bottom = h - 16;
    const vals = this.points.map((p) => p[series]);
    const lastVal = [...vals].reverse().find((v) => v !== null && v !== undefined);
    fig.querySelector('.now').textContent = formatValue(lastVal ?? null, series);
    fig.dataset.last = lastVal === undefined ? '' : String(lastVal);

    const max = niceMax(Math.max(0, ...vals.filter((v) => v !== null && v !== undefined)));
    const span = this.span(now);
    const x = (t) => ((t - (now - span)) / span) * w;
    const y = (v) => bottom - (v / max) * (bottom - top);

    const svg = document.createElementNS(SVG, 'svg');
    svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
    svg.setAttribute('preserveAspectRatio', 'none');
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `${fig.querySelector('.name').textContent}, last ${Math.round(span / 1000)} seconds`);
    const el = (name, attrs, text) => {
      const n = document.createElementNS(SVG, name);
      for (const [k, v] of Object.entries(attrs)) n.setAttribute(k, v);
      if (text !== undefined) n.textContent = text;
      svg.append(n);
      return n;
    };
    for (const f of [0, 0.5, 1]) {
      const gy = y(max * f);
      el('line', { class: 'grid', x1: 0, x2: w, y1: gy, y2: gy });
    }
    el('text', { x: 2, y: top + 8 }, compact(max));
    const mins = span / 60000;
    el('text', { x: 2, y: h - 3 }, `−${mins >= 1.5 ? `${Math.round(mins)} min` : `${Math.round(span / 1000)} s`}`);
    el('text', { x: w - 2, y: h - 3, 'text-anchor': 'end' }, 'now');

    // One path per run of known values; unknown values and time the page
    // was not polling (closed, hidden, paused) stay gaps.
    const maxStep = Math.max(3 * this.interval, 5000);
    const runs = [];
    let run = [];
    let prevT = -Infinity;
    for (const p of this.points) {
      const v = p[series];
      if (v === null || v === undefined || p.t - prevT > maxStep) {
        if (run.length) runs.push(run);
        run = [];
      }
      if (v !== null && v !== undefined) run.push([x(p.t), y(v)]);
      prevT = p.t;
    }
    if (run.length) runs.push(run);
    for (const r of runs) {
      const d = r.map(([px, py], i) => `${i ? 'L' : 'M'}${px.toFixed(1)},${py.toFixed(1)}`).join('');
      if (r.length > 1) {
        el('path', { class: 'area', d: `${d}L${r[r.length - 1][0].toFixed(1)},${bottom}L${r[0][0].toFixed(1)},${bottom}Z` });
      }
      el('path', { class: 'line', d });
      if (r.length === 1) el('circle', { class: 'dot', cx: r[0][0], cy: r[0][1], r: 2 });
    }

    plot.replaceChildren(svg);
    if (!runs.length) {
      const wait = document.createElement('div');
      wait.className = 'waiting';
      wait.textContent = series === 'rate' ? 'collecting…' : 'waiting for data…';
      plot.append(wait);
    }
    if (this.hover !== null && this.points[this.hover]) {
      const p = this.points[this.hover];
      const hx = x(p.t);
      el('line', { class: 'cursor', x1: hx, x2: hx, y1: top, y2: bottom });
      const tip = document.createElement('div');
      tip.className = 'tip';
      const ago = Math.round((now - p.t) / 1000);
      tip.textContent = `${formatValue(p[series], series)} · ${ago}s ago`;
      tip.style.left = `${Math.min(Math.max(hx, 50), w - 50)}px`;
      plot.append(tip);
    }
  }
}
