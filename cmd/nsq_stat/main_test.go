package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/toolflags/tooltest"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{"help", []string{"-h"}, 0, `(?s)^Usage: nsq_stat .*\n  -http-client-request-timeout duration\n.*\(default 5s\).*\n  -interval duration\n.*\(default 2s\)`, `^$`},
		{"version", []string{"--version"}, 0, `^nsq_stat v1\.3\.0 \(nsqx `, `^$`},
		{"no channel", []string{"--topic=t", "--nsqd-http-address=x:1"}, 2, `^$`, `--topic and --channel are required`},
		{"no source", []string{"--topic=t", "--channel=c"}, 2, `^$`, `--nsqd-http-address or --lookupd-http-address required`},
		{"both", []string{"--topic=t", "--channel=c", "--nsqd-http-address=x:1", "--lookupd-http-address=y:2"}, 2, `^$`, `not both`},
		{"scheme", []string{"--topic=t", "--channel=c", "--nsqd-http-address=http://x:1"}, 2, `^$`, `without a scheme`},
		{"interval", []string{"--topic=t", "--channel=c", "--nsqd-http-address=x:1", "--interval=0s"}, 2, `^$`, `--interval must be positive`},
		{"count zero", []string{"--topic=t", "--channel=c", "--nsqd-http-address=x:1", "--count=0"}, 2, `^$`, `--count must be positive`},
		{"bad duration", []string{"--interval=fast"}, 2, `^$`, `invalid value "fast" for flag -interval`},
		{"unreachable", []string{"--topic=t", "--channel=c", "--nsqd-http-address=127.0.0.1:1", "--count=1"}, 1, `^$`, `no nsqd answered`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tooltest.Exec(t, run, nil, tt.args...)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, code, tt.code, stderr)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(stdout) {
				t.Errorf("run(%q) stdout = %q, want match for %q", tt.args, stdout, tt.stdout)
			}
			if !regexp.MustCompile(tt.stderr).MatchString(stderr) {
				t.Errorf("run(%q) stderr = %q, want match for %q", tt.args, stderr, tt.stderr)
			}
		})
	}
}

// row is one parsed data line of the table.
type row struct {
	ingress, egress                       int64
	depth, mem, disk, inflight, deferred  int64
	requeued, timedOut, messages, clients int64
}

var rowRE = regexp.MustCompile(`^ *(\d+) +(\d+) \| +(\d+) +(\d+) +(\d+) +(\d+) +(\d+) \| +(\d+) +(\d+) +(\d+) +(\d+)$`)

const header1 = "------rate------+----------------depth----------------+--------------metadata---------------"
const header2 = "ingress  egress |   total     mem    disk inflt   def |     req     t-o         msgs clients"

// parseTable checks that the table starts with the header, which comes
// back after every 25 polls (the first poll prints no row), and returns
// the data rows.
func parseTable(t *testing.T, out string) []row {
	t.Helper()
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	var rows []row
	wantHeader := true
	for i := 0; i < len(lines); i++ {
		if wantHeader {
			if lines[i] != header1 || i+1 == len(lines) || lines[i+1] != header2 {
				t.Fatalf("lines %d-%d = %q, want the header", i, i+1, lines[i:min(i+2, len(lines))])
			}
			i++
			wantHeader = false
			continue
		}
		m := rowRE.FindStringSubmatch(lines[i])
		if m == nil {
			t.Fatalf("line %d = %q, not a table row", i, lines[i])
		}
		var v [11]int64
		for j := range v {
			v[j], _ = strconv.ParseInt(m[j+1], 10, 64)
		}
		rows = append(rows, row{v[0], v[1], v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9], v[10]})
		wantHeader = (len(rows)+1)%headerEvery == 0
	}
	return rows
}

// fakeNSQD serves a scripted sequence of /stats snapshots for topic t,
// channel c; the last one repeats.
func fakeNSQD(t *testing.T, snaps []channelStats) *httptest.Server {
	var mu sync.Mutex
	i := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/stats" || q.Get("format") != "json" || q.Get("topic") != "t" || q.Get("channel") != "c" {
			http.Error(w, "unexpected request "+r.URL.String(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		s := snaps[min(i, len(snaps)-1)]
		i++
		mu.Unlock()
		s.ChannelName = "c"
		w.Header().Set("X-NSQ-Content-Type", "nsq; version=1.0")
		json.NewEncoder(w).Encode(map[string]any{
			"version": "1.3.0",
			"topics": []any{
				map[string]any{"topic_name": "t", "channels": []any{s, map[string]any{"channel_name": "other", "depth": 1000}}},
			},
		})
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestRates checks the arithmetic against scripted stats from two nsqds:
// counters are summed and rates are per second of --interval.
func TestRates(t *testing.T) {
	a := fakeNSQD(t, []channelStats{
		{MessageCount: 100, Depth: 10, BackendDepth: 4},
		{MessageCount: 150, Depth: 20, BackendDepth: 4, InFlightCount: 3, DeferredCount: 1, RequeueCount: 2, TimeoutCount: 1, ClientCount: 1},
		{MessageCount: 150, Depth: 0, BackendDepth: 0, ClientCount: 1},
	})
	b := fakeNSQD(t, []channelStats{
		{MessageCount: 1000},
		{MessageCount: 1010, Depth: 5, ClientCount: 2},
		{MessageCount: 1030, Depth: 0, ClientCount: 2},
	})
	addr := func(s *httptest.Server) string { return strings.TrimPrefix(s.URL, "http://") }
	code, stdout, stderr := tooltest.Exec(t, run, nil, "--topic=t", "--channel=c",
		"--nsqd-http-address="+addr(a), "--nsqd-http-address="+addr(b), "--interval=100ms", "--count=2")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	rows := parseTable(t, stdout)
	want := []row{
		// 60 received in 0.1s; depth grew by 15, so 45 left.
		{ingress: 600, egress: 450, depth: 25, mem: 21, disk: 4, inflight: 3, deferred: 1, requeued: 2, timedOut: 1, messages: 1160, clients: 3},
		// 20 received; depth fell by 25, so 45 left.
		{ingress: 200, egress: 450, depth: 0, mem: 0, disk: 0, messages: 1180, clients: 3},
	}
	if len(rows) != len(want) {
		t.Fatalf("got %d rows, want %d:\n%s", len(rows), len(want), stdout)
	}
	for i := range want {
		if rows[i] != want[i] {
			t.Errorf("row %d = %+v, want %+v", i, rows[i], want[i])
		}
	}
}

// TestHeaderRepeats prints the header again every 25 polls.
func TestHeaderRepeats(t *testing.T) {
	a := fakeNSQD(t, []channelStats{{MessageCount: 1}})
	code, stdout, _ := tooltest.Exec(t, run, nil, "--topic=t", "--channel=c",
		"--nsqd-http-address="+strings.TrimPrefix(a.URL, "http://"), "--interval=1ms", "--count=30")
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	if rows := parseTable(t, stdout); len(rows) != 30 {
		t.Errorf("got %d rows, want 30", len(rows))
	}
	if n := strings.Count(stdout, header1); n != 2 {
		t.Errorf("header printed %d times in 31 polls, want 2", n)
	}
}

// TestLive runs against a real nsqd, directly and through nsqlookupd, with
// known traffic: 10 published, 3 finished, 1 requeued and held in flight by
// a connected consumer.
func TestLive(t *testing.T) {
	l := tooltest.StartLookupd(t)
	n := tooltest.StartNSQD(t, l.TCPAddr)
	tooltest.CreateChannel(t, n.TCPAddr, "live", "c")
	var bodies [][]byte
	for i := range 10 {
		bodies = append(bodies, fmt.Appendf(nil, "m%d", i))
	}
	tooltest.Publish(t, n.TCPAddr, "live", bodies...)
	tooltest.Consume(t, n.TCPAddr, "live", "c", 3) // finishes 3 (maybe more are requeued)

	// A consumer that holds one message in flight.
	cfg := nsq.NewConfig()
	cfg.MaxInFlight = 1
	c, err := nsq.NewConsumer("live", "c", cfg)
	if err != nil {
		t.Fatal(err)
	}
	c.SetLogger(nil, nsq.LogLevelError)
	held := make(chan *nsq.Message, 1)
	c.AddHandler(nsq.HandlerFunc(func(m *nsq.Message) error {
		m.DisableAutoResponse()
		held <- m
		return nil
	}))
	if err := c.ConnectToNSQD(n.TCPAddr); err != nil {
		t.Fatal(err)
	}
	var m *nsq.Message
	select {
	case m = <-held:
	case <-time.After(tooltest.Timeout):
		t.Fatal("no message for the holding consumer")
	}
	defer func() {
		m.Finish()
		c.Stop()
		<-c.StopChan
	}()

	l.WaitLookup(t, "live")
	for _, src := range []string{"--nsqd-http-address=" + n.HTTPAddr, "--lookupd-http-address=" + l.HTTPAddr} {
		code, stdout, stderr := tooltest.Exec(t, run, nil, "--topic=live", "--channel=c", src, "--interval=50ms", "--count=1")
		if code != 0 {
			t.Fatalf("%s: exit %d: %s", src, code, stderr)
		}
		rows := parseTable(t, stdout)
		if len(rows) != 1 {
			t.Fatalf("%s: got %d rows, want 1", src, len(rows))
		}
		r := rows[0]
		want := row{depth: 6, mem: 6, inflight: 1, messages: 10, clients: 1}
		r.requeued = 0 // the helper consumer may requeue what it got after its 3rd
		if r != want {
			t.Errorf("%s: row = %+v, want %+v", src, r, want)
		}
	}
}
