package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/bench"
	"github.com/nsqx/nsqx/wire"
)

// testConfig is a small, fast configuration. Counts are chosen so batches
// do not divide them evenly.
func testConfig() *bench.Config {
	cfg := bench.DefaultConfig()
	cfg.NSQDTCPAddress = ""
	cfg.Size = 64
	cfg.Batch = 50
	cfg.Conns = 2
	cfg.RDY = 100
	cfg.Duration = 300 * time.Millisecond
	cfg.Count = 20_001
	cfg.Rate = 2000
	cfg.Channels = 3
	cfg.Pipeline = 2
	cfg.Backlog = 5000
	cfg.Timeout = 5 * time.Second
	return &cfg
}

// waitFor polls cond until it holds or ten seconds pass.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// startCeiling starts a ceiling for the workload and stops it at cleanup.
func startCeiling(t *testing.T, cfg *bench.Config, workload string) *bench.Ceiling {
	t.Helper()
	srv, err := bench.StartCeiling(bench.CeilingConfig{
		MessageSize: cfg.Size, MaxRDY: cfg.RDY, Relay: workload == bench.Latency,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	return srv
}

// TestWorkloadsAgainstCeiling runs every workload end to end against the
// ceiling servers and checks that both sides agree on every message.
func TestWorkloadsAgainstCeiling(t *testing.T) {
	tests := []struct {
		workload string
		check    func(t *testing.T, cfg *bench.Config, r bench.Result, st bench.CeilingStats)
	}{
		{bench.Pub, func(t *testing.T, cfg *bench.Config, r bench.Result, st bench.CeilingStats) {
			if r.Published == 0 || r.Published != st.Published {
				t.Errorf("published %d, ceiling received %d", r.Published, st.Published)
			}
			if r.Published%int64(cfg.Batch) != 0 {
				t.Errorf("published %d, not whole batches of %d", r.Published, cfg.Batch)
			}
			if st.Sent != 0 || r.Delivered != 0 {
				t.Errorf("pub delivered %d (ceiling sent %d), want 0", r.Delivered, st.Sent)
			}
		}},
		{bench.Sub, func(t *testing.T, cfg *bench.Config, r bench.Result, st bench.CeilingStats) {
			if st.Published != cfg.Count {
				t.Errorf("prefill published %d, want %d", st.Published, cfg.Count)
			}
			if r.Delivered != cfg.Count || st.Sent != cfg.Count || st.Finished != cfg.Count {
				t.Errorf("delivered %d, ceiling sent %d and finished %d, want %d each",
					r.Delivered, st.Sent, st.Finished, cfg.Count)
			}
		}},
		{bench.PubSub, func(t *testing.T, cfg *bench.Config, r bench.Result, st bench.CeilingStats) {
			if r.Published == 0 || r.Published != st.Published {
				t.Errorf("published %d, ceiling received %d", r.Published, st.Published)
			}
			if r.Delivered == 0 || r.Delivered != st.Sent || r.Delivered != st.Finished {
				t.Errorf("delivered %d, ceiling sent %d and finished %d", r.Delivered, st.Sent, st.Finished)
			}
			if r.Delivered > r.Published {
				t.Errorf("delivered %d > published %d", r.Delivered, r.Published)
			}
		}},
		{bench.Fanout, func(t *testing.T, cfg *bench.Config, r bench.Result, st bench.CeilingStats) {
			if r.Published == 0 || r.Published != st.Published {
				t.Errorf("published %d, ceiling received %d", r.Published, st.Published)
			}
			if r.Delivered == 0 || r.Delivered != st.Sent || r.Delivered != st.Finished {
				t.Errorf("delivered %d, ceiling sent %d and finished %d", r.Delivered, st.Sent, st.Finished)
			}
			if r.Delivered > r.Published*int64(cfg.Channels) {
				t.Errorf("delivered %d > published %d × %d channels", r.Delivered, r.Published, cfg.Channels)
			}
		}},
		{bench.Latency, func(t *testing.T, cfg *bench.Config, r bench.Result, st bench.CeilingStats) {
			if r.Published == 0 || r.Published != st.Published || r.Delivered != r.Published {
				t.Errorf("published %d, relay received %d, delivered %d", r.Published, st.Published, r.Delivered)
			}
			if st.Sent != r.Delivered || st.Finished != r.Delivered || r.Lost != 0 {
				t.Errorf("relay sent %d, finished %d, lost %d; delivered %d", st.Sent, st.Finished, r.Lost, r.Delivered)
			}
			l := r.Latency
			if l == nil || l.Count != r.Delivered {
				t.Fatalf("latency = %+v, want %d samples", l, r.Delivered)
			}
			if !(0 < l.P50 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
				t.Errorf("percentiles out of order: %+v", l)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.workload, func(t *testing.T) {
			before := runtime.NumGoroutine()
			cfg := testConfig()
			if tt.workload == bench.Sub {
				cfg.Duration = time.Minute // sub ends when the count is drained
			}
			srv := startCeiling(t, cfg, tt.workload)
			r, err := bench.RunWorkload(t.Context(), cfg, tt.workload, bench.CeilingTarget{Ceiling: srv})
			if err != nil {
				t.Fatalf("RunWorkload(%s) = %v", tt.workload, err)
			}
			if r.Messages <= 0 || r.MsgsPerSec <= 0 || r.Error != "" {
				t.Errorf("result %+v: want messages and a rate, no error", r)
			}
			// The workload closed its connections; once the ceiling has
			// read them to the end its counters are final.
			waitFor(t, "ceiling connections to close", func() bool { return srv.Stats().Conns == 0 })
			tt.check(t, cfg, r, srv.Stats())
			// Nothing the workload or the ceiling started outlives them.
			srv.Close()
			waitFor(t, "goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
		})
	}
}

// TestRunCeilingOnlyJSON runs the command for every workload without an
// nsqd and reads its JSON report.
func TestRunCeilingOnlyJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{
		"--nsqd-tcp-address=", "--workload=all", "--json",
		"--duration=200ms", "--count=5000", "--size=64", "--batch=20",
		"--conns=2", "--rdy=50", "--rate=1000", "--channels=2", "--timeout=5s",
	}
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run(%q) = %d, want 0; stderr:\n%s", args, code, &stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, &stdout)
	}
	var got []string
	for _, r := range rep.Results {
		got = append(got, r.Workload)
		if r.Target != "ceiling" || r.Error != "" || r.Messages == 0 {
			t.Errorf("result %+v: want a ceiling result with messages and no error", r)
		}
	}
	if !slices.Equal(got, bench.Workloads) {
		t.Errorf("workloads in report = %q, want %q", got, bench.Workloads)
	}
	if rep.Config.Size != 64 || rep.Config.Count != 5000 {
		t.Errorf("report config = %+v", rep.Config)
	}
}

// TestRunTable checks the human-readable report names each workload and
// target.
func TestRunTable(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"--nsqd-tcp-address=", "--workload=pub,latency", "--duration=100ms", "--rate=500", "--timeout=5s"}
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run(%q) = %d, want 0; stderr:\n%s", args, code, &stderr)
	}
	out := stdout.String()
	for _, want := range []string{"msgs/s", "pub  ceiling", "latency  ceiling", "p99 µs", "lost 0"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// fakeNSQDHTTP answers the HTTP calls nsq_bench makes to nsqd, reporting
// the messages a ceiling holds as the channel depth, and records them.
type fakeNSQDHTTP struct {
	srv *bench.Ceiling
	mu  sync.Mutex
	log []string
}

func (f *fakeNSQDHTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.log = append(f.log, r.Method+" "+r.URL.Path)
	f.mu.Unlock()
	q := r.URL.Query()
	switch r.Method + " " + r.URL.Path {
	case "POST /topic/create", "POST /topic/delete", "POST /channel/create", "POST /channel/empty":
	case "GET /stats":
		st := f.srv.Stats()
		fmt.Fprintf(w, `{"version":"1.3.0","topics":[{"topic_name":%q,"channels":[{"channel_name":%q,"depth":%d,"in_flight_count":0,"deferred_count":0}]}]}`,
			q.Get("topic"), q.Get("channel"), st.Published-st.Sent)
	default:
		http.NotFound(w, r)
	}
}

func (f *fakeNSQDHTTP) calls() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// TestNSQDTarget runs the sub workload through the nsqd target: topics are
// prepared over HTTP, the prefill is waited for on /stats, and the topic is
// deleted at the end.
func TestNSQDTarget(t *testing.T) {
	cfg := testConfig()
	cfg.Duration = time.Minute // sub ends when the count is drained
	srv := startCeiling(t, cfg, bench.Sub)
	fake := &fakeNSQDHTTP{srv: srv}
	hs := httptest.NewServer(fake)
	defer hs.Close()

	target := bench.NewNSQD(srv.Addr(), strings.TrimPrefix(hs.URL, "http://"), 0, cfg.Timeout)
	r, err := bench.RunWorkload(t.Context(), cfg, bench.Sub, target)
	if err != nil {
		t.Fatalf("RunWorkload(sub) = %v", err)
	}
	if r.Target != "nsqd" || r.Delivered != cfg.Count {
		t.Errorf("result %+v: want nsqd delivering %d", r, cfg.Count)
	}
	calls := fake.calls()
	want := []string{"POST /topic/delete", "POST /topic/create", "POST /channel/create", "POST /channel/empty", "GET /stats"}
	if len(calls) < len(want) || !slices.Equal(calls[:len(want)], want) {
		t.Errorf("HTTP calls = %q, want them to start with %q", calls, want)
	}
	if calls[len(calls)-1] != "POST /topic/delete" {
		t.Errorf("last HTTP call = %q, want the topic deleted", calls[len(calls)-1])
	}
}

// TestUnresponsiveServer checks that a server that accepts connections but
// never answers fails every workload instead of hanging it.
func TestUnresponsiveServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Go(func() { io.Copy(io.Discard, c) })
		}
	})
	defer func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	}()

	cfg := testConfig()
	cfg.Timeout = 200 * time.Millisecond
	target := bench.NewNSQD(ln.Addr().String(), "", 0, cfg.Timeout)
	for _, wl := range bench.Workloads {
		r, err := bench.RunWorkload(t.Context(), cfg, wl, target)
		if err == nil || r.Error == "" {
			t.Errorf("RunWorkload(%s) against a silent server = %+v, %v; want an error", wl, r, err)
		}
	}
}

// heartbeatOnly serves one connection the way a stuck server might: it
// answers IDENTIFY and SUB, then only ever sends heartbeats.
func heartbeatOnly(nc net.Conn, stop <-chan struct{}) {
	defer nc.Close()
	var wmu sync.Mutex
	write := func(b []byte) {
		wmu.Lock()
		nc.Write(b)
		wmu.Unlock()
	}
	hbDone := make(chan struct{})
	defer func() { <-hbDone }()
	readDone := make(chan struct{})
	defer close(readDone)
	go func() {
		defer close(hbDone)
		tick := time.NewTicker(20 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				nc.Close()
				return
			case <-readDone:
				return
			case <-tick.C:
				write(wire.AppendFrame(nil, wire.FrameResponse, wire.Heartbeat))
			}
		}
	}()
	r := bufio.NewReader(nc)
	if _, err := io.ReadFull(r, make([]byte, 4)); err != nil {
		return
	}
	for {
		line, err := wire.ReadLine(r)
		if err != nil {
			return
		}
		name, _, _ := strings.Cut(string(line), " ")
		switch name {
		case "IDENTIFY", "PUB", "MPUB", "DPUB":
			size, err := wire.ReadSize(r)
			if err != nil || size < 0 {
				return
			}
			if _, err := r.Discard(int(size)); err != nil {
				return
			}
		}
		if name == "IDENTIFY" || name == "SUB" {
			write(wire.AppendFrame(nil, wire.FrameResponse, wire.OK))
		}
	}
}

// TestHeartbeatOnlyServer checks that a server that keeps connections alive
// but never acknowledges, delivers or answers CLS fails every workload
// instead of hanging it.
func TestHeartbeatOnlyServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() { heartbeatOnly(c, stop) })
		}
	})
	defer func() {
		ln.Close()
		close(stop)
		wg.Wait()
	}()

	cfg := testConfig()
	cfg.Timeout = 300 * time.Millisecond
	target := bench.NewNSQD(ln.Addr().String(), "", 0, cfg.Timeout)
	for _, wl := range bench.Workloads {
		r, err := bench.RunWorkload(t.Context(), cfg, wl, target)
		if err == nil || r.Error == "" {
			t.Errorf("RunWorkload(%s) against a heartbeat-only server = %+v, %v; want an error", wl, r, err)
		}
	}
}

// TestServerGoesAway closes the ceiling in the middle of a run: the run
// must end with an error.
func TestServerGoesAway(t *testing.T) {
	for _, wl := range []string{bench.PubSub, bench.Latency} {
		t.Run(wl, func(t *testing.T) {
			cfg := testConfig()
			cfg.Duration = time.Minute // ended by the failure, not the clock
			srv := startCeiling(t, cfg, wl)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			done := make(chan error, 1)
			go func() {
				_, err := bench.RunWorkload(ctx, cfg, wl, bench.CeilingTarget{Ceiling: srv})
				done <- err
			}()
			waitFor(t, "messages to flow", func() bool { return srv.Stats().Finished > 0 })
			srv.Close()
			if err := <-done; err == nil {
				t.Errorf("RunWorkload(%s) = nil after the server closed, want an error", wl)
			}
		})
	}
}

func TestFlags(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"--version"}, 0},
		{[]string{"--help"}, 0},
		{[]string{"--workload=bogus"}, 2},
		{[]string{"--size=0"}, 2},
		{[]string{"--conns=0"}, 2},
		{[]string{"--topic=bad/name"}, 2},
		{[]string{"--nsqd-tcp-address=", "--ceiling=false"}, 2},
		{[]string{"extra"}, 2},
		{[]string{"--workload=latency", "--size=4"}, 2},
	}
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		if got := run(t.Context(), tt.args, &stdout, &stderr); got != tt.code {
			t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, got, tt.code, &stderr)
		}
	}
}

func TestParseDefaults(t *testing.T) {
	cfg, _, err := parse(nil, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	want := bench.DefaultConfig()
	if cfg.NSQDTCPAddress != "127.0.0.1:4150" || cfg.NSQDHTTPAddress != "127.0.0.1:4151" ||
		cfg.Size != 200 || cfg.Batch != 200 || cfg.RDY != 2500 || cfg.Duration != 10*time.Second ||
		cfg.Rate != 10000 || cfg.Channels != 10 || !cfg.Ceiling || cfg.Conns != want.Conns {
		t.Errorf("parse(nil) = %+v, want the documented defaults", cfg)
	}
	cfg, _, err = parse([]string{"--workload=all"}, io.Discard)
	if err != nil || !slices.Equal(cfg.Workloads, bench.Workloads) {
		t.Errorf("parse(--workload=all) = %q, %v; want %q", cfg.Workloads, err, bench.Workloads)
	}
}

// TestRunRepeat checks that --repeat reports the median of every run and
// lists the runs in the JSON report.
func TestRunRepeat(t *testing.T) {
	var stdout, stderr bytes.Buffer
	args := []string{"--nsqd-tcp-address=", "--workload=pub,latency", "--repeat=3", "--json",
		"--duration=50ms", "--rate=500", "--conns=1", "--timeout=5s"}
	if code := run(t.Context(), args, &stdout, &stderr); code != 0 {
		t.Fatalf("run(%q) = %d, want 0; stderr:\n%s", args, code, &stderr)
	}
	var rep bench.Report
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, &stdout)
	}
	if len(rep.Results) != 2 || len(rep.Runs) != 6 {
		t.Fatalf("%d results and %d runs, want 2 and 6", len(rep.Results), len(rep.Runs))
	}
	for _, r := range rep.Results {
		if r.Runs != 3 {
			t.Errorf("%s: median of %d runs, want 3", r.Workload, r.Runs)
		}
	}
}
