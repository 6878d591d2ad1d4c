// The counter page: the total of messages every channel has processed,
// animated from one poll of /api/counter to the next.

export class Counter {
  constructor(el, rateEl, intervalMS, isLive) {
    this.el = el;
    this.rateEl = rateEl;
    this.interval = intervalMS;
    this.isLive = isLive;
    this.shown = Number(el.dataset.total) || 0;
    this.target = this.shown;
    this.last = null;
  }

  start() {
    this.poll();
    const tick = () => {
      this.step();
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
  }

  async poll() {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), this.interval);
    if (!this.isLive() || document.hidden) return;
    try {
      const resp = await fetch(this.el.dataset.source, { headers: { Accept: 'application/json' }, cache: 'no-store' });
      const data = await resp.json();
      if (!resp.ok) throw new Error(data.message);
      let total = 0;
      for (const s of Object.values(data.stats || {})) total += s.message_count;
      const now = performance.now();
      if (this.last && !data.message && total >= this.last.total) {
        const rate = ((total - this.last.total) * 1000) / (now - this.last.t);
        this.rateEl.textContent = rate >= 100 ? Math.round(rate).toLocaleString('en-US') : rate.toFixed(1);
      }
      this.last = data.message ? null : { t: now, total };
      // Animate towards the new total over one polling interval.
      this.from = this.shown;
      this.target = total;
      this.startT = now;
      this.el.dataset.total = String(total);
    } catch {
      this.el.classList.add('stale');
    }
  }

  step() {
    if (this.startT === undefined) return;
    const f = Math.min(1, (performance.now() - this.startT) / this.interval);
    const v = Math.round(this.from + (this.target - this.from) * f);
    if (v !== this.shown) {
      this.shown = v;
      this.el.textContent = v.toLocaleString('en-US');
    }
  }
}
