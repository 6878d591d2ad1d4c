package nsqd_test

// Crash tests: the real nsqd binary, run as a child process, is killed
// with SIGKILL at random moments while go-nsq producers and consumers work
// against it, and restarted on the same --data-path each time. At the end
// every publish that got OK must have been delivered, none corrupt, none
// before its due time.
//
// NSQX_CRASH_KILLS sets the number of kills (default 20; the
// --sync-every=1 run does a quarter of them), NSQX_CRASH_SEED the random
// seed (logged) and NSQX_CRASH_RACE=1 builds nsqd with the race detector.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// buildNSQD builds cmd/nsqd into a temporary directory.
func buildNSQD(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "nsqd")
	args := []string{"build", "-o", bin}
	if os.Getenv("NSQX_CRASH_RACE") != "" {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "./cmd/nsqd")...)
	cmd.Dir = ".." // the module root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/nsqd: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address nothing listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// nsqdProc is an nsqd child process. Its addresses and data path stay the
// same across restarts, so clients reconnect to the same place.
type nsqdProc struct {
	t        *testing.T
	bin      string
	dataPath string
	tcpAddr  string
	httpAddr string
	args     []string
	logPath  string

	cmd    *exec.Cmd
	exited chan error // receives Wait's result
	starts int
}

func newNSQDProc(t *testing.T, bin string, args ...string) *nsqdProc {
	dir := t.TempDir()
	p := &nsqdProc{
		t:        t,
		bin:      bin,
		dataPath: filepath.Join(dir, "data"),
		tcpAddr:  freeAddr(t),
		httpAddr: freeAddr(t),
		args:     args,
		logPath:  filepath.Join(dir, "nsqd.log"),
	}
	t.Cleanup(func() {
		if p.cmd != nil {
			p.cmd.Process.Kill() // by PID
			<-p.exited
			p.cmd = nil
		}
	})
	return p
}

// start runs nsqd and waits until /ping answers OK.
func (p *nsqdProc) start() {
	t := p.t
	t.Helper()
	if p.cmd != nil {
		t.Fatal("nsqd already running")
	}
	logf, err := os.OpenFile(p.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	fmt.Fprintf(logf, "=== start %d\n", p.starts)
	p.starts++
	args := append([]string{
		"--data-path=" + p.dataPath,
		"--tcp-address=" + p.tcpAddr,
		"--http-address=" + p.httpAddr,
	}, p.args...)
	cmd := exec.Command(p.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatalf("start nsqd: %v", err)
	}
	p.cmd = cmd
	p.exited = make(chan error, 1)
	go func() { p.exited <- cmd.Wait() }()

	deadline := time.Now().Add(30 * time.Second)
	client := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-p.exited:
			p.cmd = nil
			t.Fatalf("nsqd exited while starting: %v\n%s", err, p.logTail())
		default:
		}
		if resp, err := client.Get("http://" + p.httpAddr + "/ping"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("nsqd did not answer /ping within 30s\n%s", p.logTail())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// mustBeRunning fails the test if nsqd has exited by itself.
func (p *nsqdProc) mustBeRunning() {
	p.t.Helper()
	select {
	case err := <-p.exited:
		p.cmd = nil
		p.t.Fatalf("nsqd exited by itself: %v\n%s", err, p.logTail())
	default:
	}
}

// kill sends SIGKILL and waits for the process to go. It fails the test if
// nsqd had already exited by itself.
func (p *nsqdProc) kill() {
	p.t.Helper()
	p.mustBeRunning()
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
	p.cmd = nil
}

// termKill sends SIGTERM and, unless nsqd is gone by then, SIGKILL after
// d: a kill in the middle of a clean shutdown.
func (p *nsqdProc) termKill(d time.Duration) {
	p.t.Helper()
	p.mustBeRunning()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(d):
		p.cmd.Process.Signal(syscall.SIGKILL)
		<-p.exited
	}
	p.cmd = nil
}

// stop sends SIGTERM and waits (at most 30 s) for a clean exit.
func (p *nsqdProc) stop() {
	t := p.t
	t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-p.exited:
		p.cmd = nil
		if err != nil {
			t.Fatalf("nsqd exited with %v after SIGTERM\n%s", err, p.logTail())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("nsqd did not exit within 30s of SIGTERM\n%s", p.logTail())
	}
}

func (p *nsqdProc) log() string {
	b, _ := os.ReadFile(p.logPath)
	return string(b)
}

func (p *nsqdProc) logTail() string {
	s := p.log()
	if len(s) > 4000 {
		s = "…" + s[len(s)-4000:]
	}
	return s
}

func (p *nsqdProc) post(path string) {
	t := p.t
	t.Helper()
	resp, err := http.Post("http://"+p.httpAddr+path, "", nil)
	if err != nil {
		t.Fatalf("POST %s: %v", path, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %s", path, resp.Status)
	}
}

// channelStats returns the stats of topic's channels by name, from /stats.
func (p *nsqdProc) channelStats(topic string) (map[string]nsqd.ChannelStats, error) {
	client := &http.Client{Timeout: 5 * time.Second}
	resp, err := client.Get("http://" + p.httpAddr + "/stats?format=json&topic=" + topic)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var st nsqd.Stats
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return nil, err
	}
	out := map[string]nsqd.ChannelStats{}
	for _, ts := range st.Topics {
		if ts.TopicName != topic {
			continue
		}
		for _, cs := range ts.Channels {
			out[cs.ChannelName] = cs
		}
	}
	return out, nil
}

// waitFor polls cond every 50 ms for at most d.
func waitFor(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return true
}

// A crash test message body: "<id> <due unix ns> <kind> <padding> <crc>",
// the CRC (IEEE, hex) over everything before it.
func crashBody(id uint64, due int64, kind string, pad int) []byte {
	s := fmt.Sprintf("%d %d %s %s", id, due, kind, strings.Repeat("p", pad))
	return fmt.Appendf(nil, "%s %08x", s, crc32.ChecksumIEEE([]byte(s)))
}

func parseCrashBody(b []byte) (id uint64, due int64, ok bool) {
	i := bytes.LastIndexByte(b, ' ')
	if i < 0 {
		return 0, 0, false
	}
	sum, err := strconv.ParseUint(string(b[i+1:]), 16, 32)
	if err != nil || uint32(sum) != crc32.ChecksumIEEE(b[:i]) {
		return 0, 0, false
	}
	f := strings.Fields(string(b[:i]))
	if len(f) < 3 {
		return 0, 0, false
	}
	id, err1 := strconv.ParseUint(f[0], 10, 64)
	due, err2 := strconv.ParseInt(f[1], 10, 64)
	return id, due, err1 == nil && err2 == nil
}

// tolerance is how early a deferred message may arrive (clock and
// scheduling slack).
const tolerance = time.Second

// ledger is what the producers and consumers of a crash test did.
type ledger struct {
	mu       sync.Mutex
	acked    map[uint64]int64 // OK'd publishes: id → due (0: none)
	nextID   atomic.Uint64
	failed   int // publishes without OK
	kills    []time.Time
	channels map[string]*chanLedger
}

type chanLedger struct {
	deliveries  int
	seen        map[uint64]*msgLedger
	corrupt     []string
	early       []string
	unknown     []uint64
	afterFIN    int // deliveries of a message already FINed (crash duplicates)
	reqs        int // REQs with a delay
	reqChecked  int // redeliveries after such a REQ checked against its due time
	timeouts    int // messages left to time out
	dpubChecked int // deliveries checked against a DPUB due time
}

type msgLedger struct {
	n     int
	fined bool
	// The last REQ with a delay: when the message arrived, when the REQ
	// was sent and the earliest due time it asked for.
	reqRecv, reqSent time.Time
	reqDue           time.Time
}

func newLedger(channels ...string) *ledger {
	l := &ledger{acked: map[uint64]int64{}, channels: map[string]*chanLedger{}}
	for _, c := range channels {
		l.channels[c] = &chanLedger{seen: map[uint64]*msgLedger{}}
	}
	return l
}

func (l *ledger) newID() uint64 { return l.nextID.Add(1) }

func (l *ledger) published(ids []uint64, dues []int64, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.failed += len(ids)
		return
	}
	for i, id := range ids {
		l.acked[id] = dues[i]
	}
}

func (l *ledger) killed(at time.Time) {
	l.mu.Lock()
	l.kills = append(l.kills, at)
	l.mu.Unlock()
}

// killBetween reports whether a kill happened in [from, to]. Caller holds
// l.mu.
func (l *ledger) killBetweenLocked(from, to time.Time) bool {
	for _, k := range l.kills {
		if !k.Before(from) && !k.After(to) {
			return true
		}
	}
	return false
}

// action is what a consumer does with one delivery.
type action int

const (
	actFIN action = iota
	actREQ
	actTimeout
)

// delivered records one delivery on channel and checks it; it returns the
// message's ledger entry (nil for a bad body).
func (l *ledger) delivered(channel string, m *nsq.Message, now time.Time) *msgLedger {
	l.mu.Lock()
	defer l.mu.Unlock()
	cl := l.channels[channel]
	cl.deliveries++
	id, due, ok := parseCrashBody(m.Body)
	if !ok {
		cl.corrupt = append(cl.corrupt, fmt.Sprintf("%.60q", m.Body))
		return nil
	}
	if id == 0 || id > l.nextID.Load() {
		cl.unknown = append(cl.unknown, id)
		return nil
	}
	if due != 0 {
		cl.dpubChecked++
		if now.Before(time.Unix(0, due).Add(-tolerance)) {
			cl.early = append(cl.early, fmt.Sprintf("DPUB %d delivered %v before its due time (attempt %d)", id, time.Unix(0, due).Sub(now), m.Attempts))
		}
	}
	ml := cl.seen[id]
	if ml == nil {
		ml = &msgLedger{}
		cl.seen[id] = ml
	}
	ml.n++
	if ml.fined {
		cl.afterFIN++
	}
	if !ml.reqDue.IsZero() {
		// The REQ certainly reached nsqd when no kill came between the
		// delivery and a while after the REQ was sent; otherwise the
		// message may legitimately come back at once.
		if !l.killBetweenLocked(ml.reqRecv.Add(-time.Second), ml.reqSent.Add(time.Second)) {
			cl.reqChecked++
			if now.Before(ml.reqDue.Add(-tolerance)) {
				cl.early = append(cl.early, fmt.Sprintf("REQ'd %d delivered %v before its due time (attempt %d)", id, ml.reqDue.Sub(now), m.Attempts))
			}
		}
		ml.reqDue = time.Time{}
	}
	return ml
}

func (l *ledger) fin(channel string, ml *msgLedger) {
	l.mu.Lock()
	ml.fined = true
	l.mu.Unlock()
}

func (l *ledger) req(channel string, ml *msgLedger, recv, sent time.Time, delay time.Duration) {
	l.mu.Lock()
	ml.reqRecv, ml.reqSent, ml.reqDue = recv, sent, sent.Add(delay)
	l.channels[channel].reqs++
	l.mu.Unlock()
}

func (l *ledger) timedOut(channel string) {
	l.mu.Lock()
	l.channels[channel].timeouts++
	l.mu.Unlock()
}

// missing returns the acknowledged messages channel has not seen.
func (l *ledger) missing(channel string) []uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []uint64
	cl := l.channels[channel]
	for id := range l.acked {
		if cl.seen[id] == nil {
			out = append(out, id)
		}
	}
	slices.Sort(out)
	return out
}

// crashConsumer is a go-nsq consumer on one channel whose handler decides
// per delivery (from rnd) to FIN, REQ with a delay, or let the message time
// out. go-nsq reconnects it by itself after each restart.
type crashConsumer struct {
	c *nsq.Consumer
}

type consumerMode struct {
	msgTimeout time.Duration
	reqShare   float64 // of deliveries REQ'd with a delay
	toShare    float64 // of deliveries left to time out
}

func startCrashConsumer(t *testing.T, p *nsqdProc, l *ledger, topic, channel string, mode consumerMode, seed uint64, draining *atomic.Bool) *crashConsumer {
	t.Helper()
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = 100
	cfg.MaxAttempts = 0
	cfg.MsgTimeout = mode.msgTimeout
	cfg.LookupdPollInterval = 100 * time.Millisecond
	c, err := nsq.NewConsumer(topic, channel, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// Connection errors are what this test causes: keep go-nsq quiet.
	c.SetLogger(nil, nsq.LogLevelError)
	var mu sync.Mutex
	rnd := rand.New(rand.NewPCG(seed, 1))
	c.AddConcurrentHandlers(nsq.HandlerFunc(func(m *nsq.Message) error {
		m.DisableAutoResponse()
		recv := time.Now()
		ml := l.delivered(channel, m, recv)
		act, delay := actFIN, time.Duration(0)
		mu.Lock()
		x := rnd.Float64()
		delay = time.Duration(500+rnd.IntN(1000)) * time.Millisecond
		mu.Unlock()
		if ml != nil && !draining.Load() && m.Attempts < 6 {
			switch {
			case x < mode.reqShare:
				act = actREQ
			case x < mode.reqShare+mode.toShare:
				act = actTimeout
			}
		}
		switch act {
		case actFIN:
			if ml != nil {
				l.fin(channel, ml)
			}
			m.Finish()
		case actREQ:
			sent := time.Now()
			l.req(channel, ml, recv, sent, delay)
			m.RequeueWithoutBackoff(delay)
		case actTimeout:
			// Answer only after nsqd has timed it out (go-nsq waits for
			// an answer to every message before it closes a connection).
			l.timedOut(channel)
			time.AfterFunc(mode.msgTimeout+300*time.Millisecond, m.Finish)
		}
		return nil
	}), 4)
	if err := c.ConnectToNSQD(p.tcpAddr); err != nil {
		t.Fatalf("consumer %s/%s: %v", topic, channel, err)
	}
	cc := &crashConsumer{c: c}
	t.Cleanup(cc.stop)
	return cc
}

func (cc *crashConsumer) stop() {
	cc.c.Stop()
	select {
	case <-cc.c.StopChan:
	case <-time.After(15 * time.Second):
	}
}

// crashProducer publishes PUB, MPUB and DPUB (delay 0–2 s) until stop is
// closed, recording what was acknowledged.
func crashProducer(t *testing.T, p *nsqdProc, l *ledger, topic string, seed uint64, every time.Duration, stop <-chan struct{}) {
	cfg := nsq.NewConfig()
	cfg.DialTimeout = 500 * time.Millisecond
	// A new Producer after each failure: go-nsq 1.1.0's Producer races
	// with itself when it reconnects (connect writes w.conn while the old
	// router goroutine still logs w.conn.String()).
	var pr *nsq.Producer
	var err error
	defer func() {
		if pr != nil {
			pr.Stop()
		}
	}()
	rnd := rand.New(rand.NewPCG(seed, 2))
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if err != nil {
			pr.Stop()
			pr = nil
		}
		if pr == nil {
			if pr, err = nsq.NewProducer(p.tcpAddr, cfg); err != nil {
				t.Error(err)
				return
			}
			pr.SetLogger(nil, nsq.LogLevelError)
		}
		switch x := rnd.IntN(4); {
		case x < 2:
			id := l.newID()
			err = pr.Publish(topic, crashBody(id, 0, "pub", rnd.IntN(200)))
			l.published([]uint64{id}, []int64{0}, err)
		case x == 2:
			n := 2 + rnd.IntN(15)
			ids := make([]uint64, n)
			dues := make([]int64, n)
			bodies := make([][]byte, n)
			for i := range ids {
				ids[i] = l.newID()
				bodies[i] = crashBody(ids[i], 0, "mpub", rnd.IntN(200))
			}
			err = pr.MultiPublish(topic, bodies)
			l.published(ids, dues, err)
		default:
			id := l.newID()
			delay := time.Duration(rnd.IntN(2001)) * time.Millisecond
			due := time.Now().Add(delay).UnixNano()
			err = pr.DeferredPublish(topic, delay, crashBody(id, due, "dpub", rnd.IntN(200)))
			l.published([]uint64{id}, []int64{due}, err)
		}
	}
}

func envInt(t *testing.T, name string, def int) int {
	s := os.Getenv(name)
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("%s=%q: %v", name, s, err)
	}
	return n
}

type crashRun struct {
	kills      int
	args       []string
	producers  int
	publishGap time.Duration // per producer, between operations
}

// runCrash is one crash test: start nsqd, produce and consume while
// killing and restarting it, drain, and check the ledger.
func runCrash(t *testing.T, run crashRun) {
	seed := uint64(envInt(t, "NSQX_CRASH_SEED", int(time.Now().UnixNano()%1e9)))
	t.Logf("seed %d (NSQX_CRASH_SEED), %d kills (NSQX_CRASH_KILLS)", seed, run.kills)
	rnd := rand.New(rand.NewPCG(seed, 0))
	const topic = "crash"
	channels := []string{"a", "b"}
	p := newNSQDProc(t, buildNSQD(t), append([]string{"--mem-queue-size=0", "--sync-timeout=200ms"}, run.args...)...)
	p.start()
	p.post("/topic/create?topic=" + topic)
	for _, c := range channels {
		p.post("/channel/create?topic=" + topic + "&channel=" + c)
	}
	// The channels must be on disk before the first kill, or a crash
	// forgets them (not what this test is about).
	if !waitFor(10*time.Second, func() bool {
		b, _ := os.ReadFile(filepath.Join(p.dataPath, "nsqd.dat"))
		return bytes.Contains(b, []byte(`"name":"a"`)) && bytes.Contains(b, []byte(`"name":"b"`))
	}) {
		t.Fatalf("nsqd.dat does not list the channels\n%s", p.logTail())
	}

	l := newLedger(channels...)
	var draining atomic.Bool
	// Channel a: one consumer with msg_timeout 1 s that lets some messages
	// time out, one with a long timeout that REQs some with a delay (so a
	// REQ always reaches nsqd before the message times out). Channel b:
	// FIN everything.
	consumers := []*crashConsumer{
		startCrashConsumer(t, p, l, topic, "a", consumerMode{msgTimeout: time.Second, toShare: 0.1}, seed+1, &draining),
		startCrashConsumer(t, p, l, topic, "a", consumerMode{msgTimeout: 30 * time.Second, reqShare: 0.15}, seed+2, &draining),
		startCrashConsumer(t, p, l, topic, "b", consumerMode{msgTimeout: 30 * time.Second}, seed+3, &draining),
	}
	stopProducers := make(chan struct{})
	var wg sync.WaitGroup
	for i := range run.producers {
		wg.Go(func() { crashProducer(t, p, l, topic, seed+10+uint64(i), run.publishGap, stopProducers) })
	}

	began := time.Now()
	for k := range run.kills {
		// Mostly a second or two of work, sometimes a kill right after a
		// restart (recovery under load); every 7th kill comes during a
		// clean shutdown.
		up := time.Duration(100+rnd.IntN(2400)) * time.Millisecond
		if k%5 == 4 {
			up = time.Duration(rnd.IntN(150)) * time.Millisecond
		}
		<-time.After(up)
		at := time.Now()
		if k%7 == 6 {
			p.termKill(time.Duration(rnd.IntN(30)) * time.Millisecond)
		} else {
			p.kill()
		}
		l.killed(at)
		p.start()
	}
	t.Logf("%d kills in %v", run.kills, time.Since(began).Round(time.Millisecond))
	close(stopProducers)
	wg.Wait()

	// Drain: FIN everything from now on and wait until each channel has
	// seen every acknowledged message and holds nothing.
	draining.Store(true)
	var last map[string]nsqd.ChannelStats
	drained := waitFor(60*time.Second, func() bool {
		for _, c := range channels {
			if len(l.missing(c)) > 0 {
				return false
			}
		}
		st, err := p.channelStats(topic)
		if err != nil {
			return false
		}
		last = st
		for _, c := range channels {
			cs, ok := st[c]
			if !ok || cs.Depth != 0 || cs.InFlightCount != 0 || cs.DeferredCount != 0 {
				return false
			}
		}
		return true
	})
	for _, cc := range consumers {
		cc.stop()
	}

	l.mu.Lock()
	t.Logf("published: %d acknowledged, %d without OK", len(l.acked), l.failed)
	l.mu.Unlock()
	for _, c := range channels {
		missing := l.missing(c)
		l.mu.Lock()
		cl := l.channels[c]
		dups := 0
		for _, ml := range cl.seen {
			if ml.n > 1 {
				dups += ml.n - 1
			}
		}
		t.Logf("channel %s: %d deliveries of %d messages; %d redeliveries (%d of an already FINed message); %d REQs with delay (%d redeliveries checked against the due time), %d left to time out, %d DPUB deliveries checked; lost %d",
			c, cl.deliveries, len(cl.seen), dups, cl.afterFIN, cl.reqs, cl.reqChecked, cl.timeouts, cl.dpubChecked, len(missing))
		if len(missing) > 0 {
			t.Errorf("channel %s: %d acknowledged messages never delivered: %v", c, len(missing), missing[:min(len(missing), 30)])
		}
		for _, s := range cl.corrupt {
			t.Errorf("channel %s: corrupt body %s", c, s)
		}
		for _, s := range cl.early[:min(len(cl.early), 30)] {
			t.Errorf("channel %s: %s", c, s)
		}
		if len(cl.early) > 30 {
			t.Errorf("channel %s: … %d early deliveries in all", c, len(cl.early))
		}
		if len(cl.unknown) > 0 {
			t.Errorf("channel %s: %d deliveries of never-published IDs: %v", c, len(cl.unknown), cl.unknown[:min(len(cl.unknown), 30)])
		}
		l.mu.Unlock()
	}
	if !drained {
		t.Fatalf("channels not drained within 60s: %+v\n%s", last, p.logTail())
	}

	// A clean shutdown and restart brings nothing back.
	p.stop()
	p.start()
	st, err := p.channelStats(topic)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range channels {
		if cs := st[c]; cs.Depth != 0 || cs.DeferredCount != 0 || cs.InFlightCount != 0 {
			t.Errorf("channel %s after a clean restart: depth %d, deferred %d, in flight %d; want all 0", c, cs.Depth, cs.DeferredCount, cs.InFlightCount)
		}
	}
	p.stop()
	if log := p.log(); strings.Contains(log, "panic:") || strings.Contains(log, "DATA RACE") {
		t.Errorf("nsqd log shows a panic or a data race:\n%s", log)
	}
}

// TestCrashDurable kills a durable nsqd (--mem-queue-size=0) repeatedly:
// every acknowledged publish must be delivered.
func TestCrashDurable(t *testing.T) {
	runCrash(t, crashRun{
		kills:      envInt(t, "NSQX_CRASH_KILLS", 20),
		producers:  3,
		publishGap: 2 * time.Millisecond,
	})
}

// TestCrashDurableSyncEvery1 is TestCrashDurable with an fsync before each
// OK.
func TestCrashDurableSyncEvery1(t *testing.T) {
	runCrash(t, crashRun{
		kills:      max(envInt(t, "NSQX_CRASH_KILLS", 20)/4, 1),
		args:       []string{"--sync-every=1"},
		producers:  3,
		publishGap: 2 * time.Millisecond,
	})
}

// TestCleanShutdownKeepsEverything stops a memory-mode nsqd (default
// --mem-queue-size, a backlog deep enough to spill segments) with SIGTERM
// while it holds queued, in-flight, requeued-with-delay and deferred
// messages: after a restart every message not FINed before is delivered
// exactly once, and none before its due time.
func TestCleanShutdownKeepsEverything(t *testing.T) {
	const (
		topic    = "clean"
		backlog  = 40000
		dpubs    = 300
		finished = 2000
		requeued = 300
		inFlight = 200 // the consumer's RDY: it holds this many unanswered
		// deferFor must outlast the first consumer settling, or deferred
		// messages come back before the shutdown: on a loaded CI machine
		// with -race that took over 8 s once.
		deferFor = 15 * time.Second
	)
	p := newNSQDProc(t, buildNSQD(t), "--sync-timeout=200ms")
	p.start()
	p.post("/topic/create?topic=" + topic)
	p.post("/channel/create?topic=" + topic + "&channel=c")

	pr, err := nsq.NewProducer(p.tcpAddr, nsq.NewConfig())
	if err != nil {
		t.Fatal(err)
	}
	pr.SetLogger(newGoNSQLogger(t), nsq.LogLevelWarning)
	defer pr.Stop()
	dues := map[uint64]int64{} // every message: id → DPUB due time (0: none)
	var id uint64
	dpub := func() {
		id++
		due := time.Now().Add(deferFor).UnixNano()
		dues[id] = due
		if err := pr.DeferredPublish(topic, deferFor, crashBody(id, due, "dpub", 250)); err != nil {
			t.Fatalf("DPUB: %v", err)
		}
	}
	// A third of the DPUBs first (the channel's cursor passes them: they
	// become the channel's deferred messages), the rest among the backlog.
	for range dpubs / 3 {
		dpub()
	}
	batches := backlog / 100
	for b := range batches {
		batch := make([][]byte, 0, 100)
		for range 100 {
			id++
			dues[id] = 0
			batch = append(batch, crashBody(id, 0, "mpub", 250))
		}
		if err := pr.MultiPublish(topic, batch); err != nil {
			t.Fatalf("MPUB: %v", err)
		}
		if b%(batches/(dpubs-dpubs/3)) == 0 {
			dpub()
		}
	}
	nDPUB := 0
	for _, due := range dues {
		if due != 0 {
			nDPUB++
		}
	}
	if !waitFor(10*time.Second, func() bool {
		segs, _ := filepath.Glob(filepath.Join(p.dataPath, "nsqx", topic, "*.seg"))
		return len(segs) > 0
	}) {
		t.Fatalf("a backlog of %d messages spilled no segment to disk", backlog)
	}

	// First consumer: FIN some, REQ some with a delay, hold the rest.
	type req struct {
		due time.Time
	}
	var (
		mu      sync.Mutex
		got     int
		fins    = map[uint64]bool{}
		reqs    = map[uint64]req{}
		held    = map[uint64]*nsq.Message{}
		corrupt int
	)
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = inFlight
	cfg.MsgTimeout = time.Minute
	cfg.MaxAttempts = 0
	c1, err := nsq.NewConsumer(topic, "c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	c1.SetLogger(newGoNSQLogger(t), nsq.LogLevelError)
	c1.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		m.DisableAutoResponse()
		mid, _, ok := parseCrashBody(m.Body)
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			corrupt++
			m.Finish()
			return nil
		}
		got++
		switch {
		case got <= finished:
			fins[mid] = true
			m.Finish()
		case got <= finished+requeued:
			reqs[mid] = req{due: time.Now().Add(deferFor)}
			m.RequeueWithoutBackoff(deferFor)
		default:
			held[mid] = m
		}
		return nil
	}))
	if err := c1.ConnectToNSQD(p.tcpAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c1.Stop()
		<-c1.StopChan
	})
	if !waitFor(30*time.Second, func() bool {
		st, err := p.channelStats(topic)
		if err != nil {
			return false
		}
		cs := st["c"]
		return cs.InFlightCount == inFlight && cs.RequeueCount == requeued && cs.DeferredCount >= requeued+dpubs/3
	}) {
		st, _ := p.channelStats(topic)
		t.Fatalf("consumer did not settle: %+v", st["c"])
	}
	mu.Lock()
	if len(held) != inFlight || len(fins) != finished || len(reqs) != requeued {
		t.Fatalf("consumer holds %d, finished %d, requeued %d; want %d, %d, %d", len(held), len(fins), len(reqs), inFlight, finished, requeued)
	}
	mu.Unlock()

	p.stop()
	// go-nsq waits for an answer to each message before it lets go of a
	// connection, even a closed one.
	mu.Lock()
	for _, m := range held {
		m.Finish()
	}
	mu.Unlock()
	c1.Stop()
	<-c1.StopChan

	p.start()
	type delivery struct {
		at       time.Time
		attempts uint16
	}
	seen := map[uint64][]delivery{}
	c2, err := nsq.NewConsumer(topic, "c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	c2.SetLogger(newGoNSQLogger(t), nsq.LogLevelError)
	c2.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		mid, _, ok := parseCrashBody(m.Body)
		mu.Lock()
		defer mu.Unlock()
		if !ok {
			corrupt++
			return nil
		}
		seen[mid] = append(seen[mid], delivery{at: time.Now(), attempts: m.Attempts})
		return nil
	}))
	if err := c2.ConnectToNSQD(p.tcpAddr); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c2.Stop()
		<-c2.StopChan
	})
	want := len(dues) - finished
	drained := waitFor(60*time.Second, func() bool {
		mu.Lock()
		n := len(seen)
		mu.Unlock()
		if n < want {
			return false
		}
		st, err := p.channelStats(topic)
		cs := st["c"]
		return err == nil && cs.Depth == 0 && cs.InFlightCount == 0 && cs.DeferredCount == 0
	})

	mu.Lock()
	defer mu.Unlock()
	if corrupt > 0 {
		t.Errorf("%d corrupt bodies", corrupt)
	}
	var lost, twice, again, early []string
	for mid, due := range dues {
		ds := seen[mid]
		switch {
		case fins[mid] && len(ds) > 0:
			again = append(again, fmt.Sprint(mid))
		case !fins[mid] && len(ds) == 0:
			lost = append(lost, fmt.Sprint(mid))
		case len(ds) > 1:
			twice = append(twice, fmt.Sprint(mid))
		}
		if len(ds) == 0 {
			continue
		}
		if due != 0 && ds[0].at.Before(time.Unix(0, due).Add(-tolerance)) {
			early = append(early, fmt.Sprintf("DPUB %d %v early", mid, time.Unix(0, due).Sub(ds[0].at)))
		}
		if r, ok := reqs[mid]; ok && ds[0].at.Before(r.due.Add(-tolerance)) {
			early = append(early, fmt.Sprintf("REQ'd %d %v early", mid, r.due.Sub(ds[0].at)))
		}
	}
	heldBack := 0
	for mid := range held {
		if len(seen[mid]) == 1 {
			heldBack++
		}
	}
	t.Logf("%d messages (%d DPUB); before SIGTERM: %d FINed, %d REQ'd for %v, %d in flight; after restart %d delivered, %d of the in-flight ones",
		len(dues), nDPUB, finished, requeued, deferFor, inFlight, len(seen), heldBack)
	for _, x := range []struct {
		what string
		ids  []string
	}{
		{"lost", lost},
		{"delivered more than once", twice},
		{"FINed before the shutdown and delivered again", again},
		{"delivered before their due time", early},
	} {
		if len(x.ids) > 0 {
			slices.Sort(x.ids)
			t.Errorf("%d messages %s: %v", len(x.ids), x.what, x.ids[:min(len(x.ids), 20)])
		}
	}
	if !drained {
		st, _ := p.channelStats(topic)
		t.Errorf("channel not drained within 60s: %+v", st["c"])
	}
}

// copyDir copies the regular files under src to dst. Taken of a running
// nsqd's --data-path while nothing happens, it is what a kill -9 at that
// moment would leave (written data is in the page cache either way).
func copyDir(t *testing.T, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(dst, rel), 0o755)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(dst, rel), b, 0o644)
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// TestCrashImageREQJournal takes the image a kill -9 would leave right
// after a REQ with a delay (logged in the channel's REQ journal, progress
// not saved since): the restarted nsqd may deliver the message again (it
// cannot know it was FINed after), but once it is FINed and nsqd stops
// cleanly, a further restart must not bring it back.
func TestCrashImageREQJournal(t *testing.T) {
	t.Parallel()
	cfg, _ := durableConfig(t)
	cfg.SyncTimeout = time.Hour // no progress save but the final one
	n := nsqtest.StartNSQDConfig(t, cfg)
	publishBodies(t, n, "journal", []string{"m1"})

	var deliveries atomic.Int32
	ncfg := nsq.NewConfig()
	c, err := nsq.NewConsumer("journal", "c", ncfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(newGoNSQLogger(t), nsq.LogLevelWarning)
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		if deliveries.Add(1) == 1 {
			m.DisableAutoResponse()
			m.RequeueWithoutBackoff(50 * time.Millisecond)
		}
		return nil
	}))
	if err := c.ConnectToNSQD(n.TCPAddr); err != nil {
		t.Fatal(err)
	}
	nsqtest.Eventually(t, 10*time.Second, "REQ'd message delivered again and FINed", func() bool {
		cs, ok := durChannelStats(n, "journal", "c")
		return deliveries.Load() == 2 && ok && cs.Depth == 0 && cs.InFlightCount == 0 && cs.DeferredCount == 0
	})
	c.Stop()
	<-c.StopChan
	journal := filepath.Join(cfg.DataPath, "nsqx", "journal", "c.req")
	if b, err := os.ReadFile(journal); err != nil || len(b) == 0 {
		t.Fatalf("REQ journal %s: %d bytes, %v; want the REQ in it", journal, len(b), err)
	}
	image := t.TempDir()
	copyDir(t, cfg.DataPath, image)
	n.Stop(t)

	icfg := *cfg
	icfg.DataPath = image
	n = startWithin(t, &icfg, 20*time.Second)
	got := drainChannel(t, n, "journal", "c", 20*time.Second)
	t.Logf("after the crash: m1 delivered %d times", got["m1"])
	n.Stop(t)

	n = startWithin(t, &icfg, 20*time.Second)
	if got := drainChannel(t, n, "journal", "c", 20*time.Second); len(got) != 0 {
		t.Errorf("after a clean restart: delivered %v, want nothing (m1 was FINed before the clean shutdown)", got)
	}
}

func durChannelStats(n *nsqtest.NSQD, topic, channel string) (nsqd.ChannelStats, bool) {
	st := n.Stats(nsqd.StatsFilter{Topic: topic, Channel: channel})
	for _, ts := range st.Topics {
		for _, cs := range ts.Channels {
			if cs.ChannelName == channel {
				return cs, true
			}
		}
	}
	return nsqd.ChannelStats{}, false
}
