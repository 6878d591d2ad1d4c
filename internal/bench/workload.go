package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// Result is the outcome of one workload against one target.
type Result struct {
	Workload  string `json:"workload"`
	Target    string `json:"target"`
	Published int64  `json:"published"` // messages acknowledged by the server
	Delivered int64  `json:"delivered"` // messages received (and FIN-ed) by consumers
	// Messages is the count the rate is computed from: published for
	// pub, delivered for the others.
	Messages   int64         `json:"messages"`
	Elapsed    time.Duration `json:"elapsed_ns"`
	MsgsPerSec float64       `json:"msgs_per_sec"`
	MBPerSec   float64       `json:"mb_per_sec"` // message bodies, 10⁶ bytes

	// Ratio is MsgsPerSec over the ceiling's in the same run.
	Ratio float64 `json:"ratio_to_ceiling,omitempty"`
	// P99Ratio is the p99 latency over the ceiling's (latency only).
	P99Ratio float64 `json:"p99_ratio_to_ceiling,omitempty"`

	// ServerCPUPerMsg is the server's CPU microseconds per message; only
	// when the server's pid is known.
	ServerCPUPerMsg float64 `json:"server_cpu_us_per_msg,omitempty"`
	// BenchCPUPerMsg is this process's CPU microseconds per message; for
	// a ceiling it includes the ceiling server.
	BenchCPUPerMsg float64 `json:"bench_cpu_us_per_msg,omitempty"`
	// ServerRSS is the server's RSS at the end of the run.
	ServerRSS int64 `json:"server_rss_bytes,omitempty"`
	// RSSPerQueued is the server's RSS growth per pre-filled message (sub).
	RSSPerQueued float64 `json:"rss_per_queued_msg_bytes,omitempty"`

	Latency *Percentiles `json:"latency_us,omitempty"`
	Lost    int64        `json:"lost,omitempty"` // latency: published, never received

	Runs      int    `json:"runs,omitempty"` // runs this result is the median of
	RDY       int    `json:"rdy,omitempty"`  // RDY used, after the server's max_rdy_count
	FinFailed int64  `json:"fin_failed,omitempty"`
	Error     string `json:"error,omitempty"`
}

// RunWorkload runs one workload against t. Every goroutine it starts has
// returned and every connection is closed when it returns. On error the
// Result holds what was measured before it.
func RunWorkload(ctx context.Context, cfg *Config, workload string, t Target) (Result, error) {
	r := Result{Workload: workload, Target: t.Name()}
	var err error
	switch workload {
	case Pub:
		err = runPub(ctx, cfg, t, &r)
	case Sub:
		err = runSub(ctx, cfg, t, &r)
	case PubSub:
		err = runPubSub(ctx, cfg, t, &r, []string{"bench"}, cfg.Conns)
	case Fanout:
		channels := make([]string, cfg.Channels)
		for i := range channels {
			channels[i] = "ch" + strconv.Itoa(i)
		}
		err = runPubSub(ctx, cfg, t, &r, channels, 1)
	case Latency:
		err = runLatency(ctx, cfg, t, &r)
	default:
		err = fmt.Errorf("unknown workload %q", workload)
	}
	if err != nil {
		r.Error = err.Error()
	}
	return r, err
}

// group runs goroutines and collects their errors; the first error cancels
// the run so the others stop too.
type group struct {
	wg     sync.WaitGroup
	cancel context.CancelFunc
	mu     sync.Mutex
	errs   []error
}

func (g *group) Go(f func() error) {
	g.wg.Go(func() {
		if err := f(); err != nil {
			g.mu.Lock()
			g.errs = append(g.errs, err)
			g.mu.Unlock()
			if g.cancel != nil {
				g.cancel()
			}
		}
	})
}

// Wait waits for every goroutine and returns the first error.
func (g *group) Wait() error {
	g.wg.Wait()
	switch len(g.errs) {
	case 0:
		return nil
	case 1:
		return g.errs[0]
	default:
		return fmt.Errorf("%w (and %d more errors)", g.errs[0], len(g.errs)-1)
	}
}

// meter measures the elapsed time and CPU of a run.
type meter struct {
	t      Target
	start  time.Time
	self   time.Duration
	srv    Usage
	srvOK  bool
	srvErr error
}

func startMeter(t Target) *meter {
	m := &meter{t: t}
	m.srv, m.srvOK, m.srvErr = t.Usage()
	m.self = selfCPU()
	m.start = time.Now()
	return m
}

// stop fills the rate and CPU figures of r from r.Messages.
func (m *meter) stop(r *Result, size int) { m.stopAt(r, size, time.Since(m.start), r.Messages) }

// stopAt is stop with the rate taken from the first rateMsgs messages,
// which took elapsed; the CPU figures still cover all of r.Messages and
// everything up to now.
func (m *meter) stopAt(r *Result, size int, elapsed time.Duration, rateMsgs int64) {
	r.Elapsed = elapsed
	self := selfCPU() - m.self
	srv, ok, err := m.t.Usage()
	if r.Messages == 0 || rateMsgs <= 0 || r.Elapsed <= 0 {
		return
	}
	secs := r.Elapsed.Seconds()
	r.MsgsPerSec = float64(rateMsgs) / secs
	r.MBPerSec = float64(rateMsgs) * float64(size) / secs / 1e6
	if self > 0 {
		r.BenchCPUPerMsg = float64(self.Microseconds()) / float64(r.Messages)
	}
	if m.srvOK && ok && err == nil {
		r.ServerCPUPerMsg = float64((srv.CPU - m.srv.CPU).Microseconds()) / float64(r.Messages)
		r.ServerRSS = srv.RSS
	}
}

// dialAll opens n connections and sends IDENTIFY on each. It returns the
// server's max_rdy_count (0 if not said).
func dialAll(ctx context.Context, cfg *Config, addr string, n int, identify map[string]any) ([]*client, int, error) {
	var cs []*client
	maxRDY := 0
	for range n {
		c, err := dial(ctx, addr, cfg.Timeout)
		if err == nil {
			maxRDY, err = c.identify(cfg.Timeout, identify)
			if err != nil {
				c.Close()
			}
		}
		if err != nil {
			closeAll(cs)
			return nil, 0, fmt.Errorf("connect to %s: %w", addr, err)
		}
		cs = append(cs, c)
	}
	return cs, maxRDY, nil
}

func closeAll(cs []*client) {
	for _, c := range cs {
		c.Close()
	}
}

// subscribeAll opens n consumer connections on topic/channel.
func subscribeAll(ctx context.Context, cfg *Config, addr, topic, channel string, n int, identify map[string]any) ([]*client, int, error) {
	cs, maxRDY, err := dialAll(ctx, cfg, addr, n, identify)
	if err != nil {
		return nil, 0, err
	}
	for _, c := range cs {
		if err := c.subscribe(topic, channel); err != nil {
			closeAll(cs)
			return nil, 0, err
		}
	}
	rdy := cfg.RDY
	if maxRDY > 0 && rdy > maxRDY {
		rdy = maxRDY
	}
	return cs, rdy, nil
}

// runPub: publishers send MPUB batches to a topic without channels.
func runPub(ctx context.Context, cfg *Config, t Target, r *Result) error {
	topic := cfg.topic(Pub)
	if err := t.Prepare(ctx, topic, nil); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer t.Remove(context.WithoutCancel(ctx), topic)
	pubs, _, err := dialAll(ctx, cfg, t.Addr(), cfg.Conns, nil)
	if err != nil {
		return err
	}
	defer closeAll(pubs)

	b := batch{cmd: mpubCommand(topic, cfg.Batch, cfg.Size), msgs: int64(cfg.Batch)}
	var acked atomic.Int64
	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	g := group{cancel: cancel}
	m := startMeter(t)
	for _, c := range pubs {
		g.Go(func() error { return c.publish(runCtx, untilDone(b), cfg.Pipeline, &acked) })
	}
	err = g.Wait()
	r.Published = acked.Load()
	r.Messages = r.Published
	m.stop(r, cfg.Size)
	return err
}

// prefill publishes n messages to topic and waits until channel holds them.
func prefill(ctx context.Context, cfg *Config, t Target, topic, channel string, n int64) error {
	pubs, _, err := dialAll(ctx, cfg, t.Addr(), cfg.Conns, nil)
	if err != nil {
		return err
	}
	defer closeAll(pubs)
	pubCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	b := batch{cmd: mpubCommand(topic, cfg.Batch, cfg.Size), msgs: int64(cfg.Batch)}
	next := countBudget(topic, b, cfg.Size, n)
	var acked atomic.Int64
	g := group{cancel: cancel}
	for _, c := range pubs {
		g.Go(func() error { return c.publish(pubCtx, next, cfg.Pipeline, &acked) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if got := acked.Load(); got != n {
		return fmt.Errorf("published %d of %d messages", got, n)
	}
	// A broker may move messages from the topic to its channels
	// asynchronously; wait for them, but not forever.
	waitCtx, cancelWait := context.WithTimeout(ctx, max(cfg.Timeout, 6*cfg.Duration))
	defer cancelWait()
	return t.WaitQueued(waitCtx, topic, channel, n)
}

// runSub: pre-fill a channel with cfg.Count messages, then drain it.
func runSub(ctx context.Context, cfg *Config, t Target, r *Result) error {
	topic, channel := cfg.topic(Sub), "bench"
	if err := t.Prepare(ctx, topic, []string{channel}); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer t.Remove(context.WithoutCancel(ctx), topic)

	before, beforeOK, _ := t.Usage()
	if err := prefill(ctx, cfg, t, topic, channel, cfg.Count); err != nil {
		return fmt.Errorf("prefill: %w", err)
	}
	if queued, ok, _ := t.Usage(); ok && beforeOK {
		r.RSSPerQueued = float64(queued.RSS-before.RSS) / float64(cfg.Count)
	}

	cons, rdy, err := subscribeAll(ctx, cfg, t.Addr(), topic, channel, cfg.Conns, nil)
	if err != nil {
		return err
	}
	defer closeAll(cons)
	r.RDY = rdy

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var delivered, finFailed atomic.Int64
	// The rate is that of the part of the backlog that exceeds what the
	// consumers' RDY can hold: the last window is held by the server's
	// output-buffer timeout (NSQ's, up to 250 ms), which is latency, not
	// throughput, and would dominate a short run.
	steady := cfg.Count - int64(len(cons)*rdy)
	var steadyAt atomic.Int64 // ns after start; 0 until reached
	var m *meter
	onBatch := func(total int64) {
		if steady > 0 && total >= steady && steadyAt.Load() == 0 {
			steadyAt.CompareAndSwap(0, int64(time.Since(m.start)))
		}
		if total >= cfg.Count {
			cancel()
		}
	}
	g := group{cancel: cancel}
	m = startMeter(t)
	for _, c := range cons {
		cs := &consumer{c: c, rdy: rdy, delivered: &delivered, finFailed: &finFailed, onBatch: onBatch}
		g.Go(func() error { return cs.run(runCtx) })
	}
	err = g.Wait()
	r.Published = cfg.Count
	r.Delivered = delivered.Load()
	r.Messages = r.Delivered
	r.FinFailed = finFailed.Load()
	if at := steadyAt.Load(); at > 0 {
		m.stopAt(r, cfg.Size, time.Duration(at), steady)
	} else {
		m.stop(r, cfg.Size)
	}
	return err
}

// runPubSub: publishers and consumers together; consumersPer consumers on
// each channel.
func runPubSub(ctx context.Context, cfg *Config, t Target, r *Result, channels []string, consumersPer int) error {
	topic := cfg.topic(r.Workload)
	if err := t.Prepare(ctx, topic, channels); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer t.Remove(context.WithoutCancel(ctx), topic)

	pubs, _, err := dialAll(ctx, cfg, t.Addr(), cfg.Conns, nil)
	if err != nil {
		return err
	}
	defer closeAll(pubs)
	var cons []*client
	defer func() { closeAll(cons) }()
	rdy := cfg.RDY
	for _, ch := range channels {
		cs, chRDY, err := subscribeAll(ctx, cfg, t.Addr(), topic, ch, consumersPer, nil)
		if err != nil {
			return err
		}
		cons = append(cons, cs...)
		rdy = chRDY
	}
	r.RDY = rdy

	runCtx, cancel := context.WithTimeout(ctx, cfg.Duration)
	defer cancel()
	var granted, acked, delivered, finFailed atomic.Int64
	b := batch{cmd: mpubCommand(topic, cfg.Batch, cfg.Size), msgs: int64(cfg.Batch)}
	next := gated(untilDone(b), &granted, &delivered, int64(len(channels)), cfg.Backlog)
	g := group{cancel: cancel}
	m := startMeter(t)
	for _, c := range cons {
		cs := &consumer{c: c, rdy: rdy, delivered: &delivered, finFailed: &finFailed}
		g.Go(func() error { return cs.run(runCtx) })
	}
	for _, c := range pubs {
		g.Go(func() error { return c.publish(runCtx, next, cfg.Pipeline, &acked) })
	}
	err = g.Wait()
	r.Published = acked.Load()
	r.Delivered = delivered.Load()
	r.Messages = r.Delivered
	r.FinFailed = finFailed.Load()
	m.stop(r, cfg.Size)
	return err
}

// unbuffered asks the server to write every message frame at once.
var unbuffered = map[string]any{"output_buffer_size": -1, "output_buffer_timeout": -1}

// runLatency: one publisher at cfg.Rate, one unbuffered consumer.
func runLatency(ctx context.Context, cfg *Config, t Target, r *Result) error {
	topic, channel := cfg.topic(Latency), "bench"
	if err := t.Prepare(ctx, topic, []string{channel}); err != nil {
		return fmt.Errorf("prepare: %w", err)
	}
	defer t.Remove(context.WithoutCancel(ctx), topic)

	cons, rdy, err := subscribeAll(ctx, cfg, t.Addr(), topic, channel, 1, unbuffered)
	if err != nil {
		return err
	}
	defer closeAll(cons)
	pubs, _, err := dialAll(ctx, cfg, t.Addr(), 1, nil)
	if err != nil {
		return err
	}
	defer closeAll(pubs)
	r.RDY = rdy

	expect := min(int64(cfg.Rate)*int64(cfg.Duration/time.Millisecond)/1000+1024, 1<<24)
	lat := make([]int64, 0, expect)
	base := time.Now()
	pubCtx, cancelPub := context.WithTimeout(ctx, cfg.Duration)
	defer cancelPub()
	conCtx, cancelCon := context.WithCancel(ctx)
	defer cancelCon()
	g := group{cancel: func() { cancelPub(); cancelCon() }}
	var sent, acked, delivered, finFailed atomic.Int64
	m := startMeter(t)
	cs := &consumer{c: cons[0], rdy: rdy, delivered: &delivered, finFailed: &finFailed, lat: &lat, base: base}
	g.Go(func() error { return cs.run(conCtx) })
	var elapsed time.Duration
	g.Go(func() error {
		defer cancelCon()
		err := pubs[0].pace(pubCtx, topic, cfg.Rate, cfg.Size, base, &sent, &acked)
		elapsed = time.Since(m.start)
		if err != nil {
			return err
		}
		// Let the consumer receive what is still on its way; a message
		// later than this counts as lost.
		deadline := time.Now().Add(min(cfg.Timeout, latencyDrain))
		for delivered.Load() < sent.Load() && time.Now().Before(deadline) && conCtx.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		return nil
	})
	err = g.Wait()
	r.Published = acked.Load()
	r.Delivered = delivered.Load()
	r.Lost = max(0, sent.Load()-r.Delivered)
	r.FinFailed = finFailed.Load()
	// The rate is the publishing rate: the wait for late messages is not
	// part of the run.
	r.Messages = sent.Load()
	m.stopAt(r, cfg.Size, elapsed, r.Messages)
	r.Latency = percentiles(lat)
	return err
}

// latencyDrain is how long the latency workload waits, after the last
// publish, for messages still on their way.
const latencyDrain = 3 * time.Second

// pace publishes single PUBs at rate per second until ctx ends, each body
// starting with its send time in nanoseconds since base. A second goroutine
// reads the OKs so a slow server cannot hold up the pacing; pace returns
// once every sent message is acknowledged.
func (c *client) pace(ctx context.Context, topic string, rate, size int, base time.Time, sent, acked *atomic.Int64) error {
	cmd := wire.AppendCommand(nil, "PUB", messageBody(size), topic)
	stamp := cmd[len(cmd)-size:]

	var total atomic.Int64 // messages sent, once done
	var done atomic.Bool
	var doneAt atomic.Int64 // when done was set, in unix nanoseconds
	var readErr error
	var wg sync.WaitGroup
	// finished reports whether every message sent is acknowledged: the
	// sender closes the connection then, and errors are no longer errors.
	finished := func() bool { return done.Load() && acked.Load() == total.Load() }
	wg.Go(func() {
		for {
			typ, data, err := c.readFrame()
			switch {
			case err != nil:
				if !finished() {
					readErr = fmt.Errorf("publish: waiting for OK: %w", err)
				}
				return
			case typ == wire.FrameResponse && isHeartbeat(data):
				if done.Load() && time.Now().UnixNano()-doneAt.Load() > int64(c.timeout) {
					readErr = fmt.Errorf("publish: %w", errNoReply)
					c.Close()
					return
				}
				if err := c.send(nopCommand); err != nil {
					if !finished() {
						readErr = fmt.Errorf("publish: NOP: %w", err)
					}
					return
				}
			case typ == wire.FrameResponse:
				n := acked.Add(1)
				if done.Load() && n == total.Load() {
					return
				}
			case typ == wire.FrameError:
				readErr = fmt.Errorf("publish: %w", &serverError{string(data)})
				c.Close() // stops the sender too
				return
			}
		}
	})

	interval := time.Second / time.Duration(rate)
	timer := time.NewTimer(0)
	<-timer.C
	var sendErr error
	start := time.Now()
	for i := int64(0); ctx.Err() == nil; i++ {
		if wait := time.Until(start.Add(time.Duration(i) * interval)); wait > 0 {
			timer.Reset(wait)
			select {
			case <-ctx.Done():
				timer.Stop()
			case <-timer.C:
			}
			if ctx.Err() != nil {
				break
			}
		}
		binary.BigEndian.PutUint64(stamp, uint64(time.Since(base)))
		if sendErr = c.send(cmd); sendErr != nil {
			break
		}
		sent.Add(1)
	}
	total.Store(sent.Load())
	doneAt.Store(time.Now().UnixNano())
	done.Store(true)
	if acked.Load() == total.Load() || sendErr != nil {
		c.Close() // wakes the reader: nothing more will come
	}
	wg.Wait()
	return errors.Join(readErr, sendErr)
}

// Percentiles of a latency distribution, in microseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// percentiles sorts ns in place and returns its nearest-rank percentiles,
// nil when it is empty.
func percentiles(ns []int64) *Percentiles {
	if len(ns) == 0 {
		return nil
	}
	slices.Sort(ns)
	at := func(q float64) float64 {
		i := int(q*float64(len(ns))+0.999999) - 1
		i = max(0, min(i, len(ns)-1))
		return float64(ns[i]) / 1e3
	}
	return &Percentiles{
		Count: int64(len(ns)),
		P50:   at(0.50),
		P90:   at(0.90),
		P99:   at(0.99),
		P999:  at(0.999),
		Max:   float64(ns[len(ns)-1]) / 1e3,
	}
}
