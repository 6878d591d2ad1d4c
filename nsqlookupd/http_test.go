package nsqlookupd

import (
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

const jsonType = "application/json; charset=utf-8"

// zeroTimeNanos is what NSQ's /debug reports as tombstoned_at for a
// producer never tombstoned: the zero time.Time's UnixNano.
const zeroTimeNanos = "-6795364578871345152"

func TestHTTPErrors(t *testing.T) {
	s := startServer(t, nil, nil)
	post(t, s, "/channel/create?topic=t&channel=c")

	tests := []struct {
		method, path string
		code         int
		message      string
		allow        string
	}{
		{"GET", "/channels", 400, "MISSING_ARG_TOPIC", ""},
		{"GET", "/channels?topic=%zz", 400, "INVALID_REQUEST", ""},
		{"GET", "/channels?topic=t;x", 400, "INVALID_REQUEST", ""},
		{"GET", "/lookup", 400, "MISSING_ARG_TOPIC", ""},
		{"GET", "/lookup?topics=t", 400, "MISSING_ARG_TOPIC", ""},
		{"GET", "/lookup?topic=nope", 404, "TOPIC_NOT_FOUND", ""},
		{"GET", "/lookup?topic=", 404, "TOPIC_NOT_FOUND", ""},
		{"GET", "/lookup?topic=t&x=%zz", 400, "INVALID_REQUEST", ""},
		{"POST", "/topic/create", 400, "MISSING_ARG_TOPIC", ""},
		{"POST", "/topic/create?topic=", 400, "INVALID_ARG_TOPIC", ""},
		{"POST", "/topic/create?topic=a*b", 400, "INVALID_ARG_TOPIC", ""},
		{"POST", "/topic/create?topic=" + strings.Repeat("a", 65), 400, "INVALID_ARG_TOPIC", ""},
		{"POST", "/topic/create?topic=%zz", 400, "INVALID_REQUEST", ""},
		{"POST", "/topic/delete", 400, "MISSING_ARG_TOPIC", ""},
		{"POST", "/channel/create", 400, "MISSING_ARG_TOPIC", ""},
		{"POST", "/channel/create?channel=c", 400, "MISSING_ARG_TOPIC", ""},
		{"POST", "/channel/create?topic=t!&channel=c", 400, "INVALID_ARG_TOPIC", ""},
		{"POST", "/channel/create?topic=t", 400, "MISSING_ARG_CHANNEL", ""},
		{"POST", "/channel/create?topic=t&channel=", 400, "INVALID_ARG_CHANNEL", ""},
		{"POST", "/channel/create?topic=t&channel=c%2Fd", 400, "INVALID_ARG_CHANNEL", ""},
		{"POST", "/channel/delete", 400, "MISSING_ARG_TOPIC", ""},
		{"POST", "/channel/delete?topic=t!&channel=c", 400, "INVALID_ARG_TOPIC", ""},
		{"POST", "/channel/delete?topic=t", 400, "MISSING_ARG_CHANNEL", ""},
		{"POST", "/channel/delete?topic=t&channel=c!", 400, "INVALID_ARG_CHANNEL", ""},
		{"POST", "/channel/delete?topic=t&channel=nope", 404, "CHANNEL_NOT_FOUND", ""},
		{"POST", "/channel/delete?topic=nope&channel=c", 404, "CHANNEL_NOT_FOUND", ""},
		{"POST", "/topic/tombstone", 400, "MISSING_ARG_TOPIC", ""},
		{"POST", "/topic/tombstone?node=a:1", 400, "MISSING_ARG_TOPIC", ""},
		{"POST", "/topic/tombstone?topic=t", 400, "MISSING_ARG_NODE", ""},
		{"POST", "/topic/tombstone?topic=%zz", 400, "INVALID_REQUEST", ""},
		{"GET", "/", 404, "NOT_FOUND", ""},
		{"GET", "/nope", 404, "NOT_FOUND", ""},
		{"GET", "/ping/", 404, "NOT_FOUND", ""},
		{"GET", "/topic", 404, "NOT_FOUND", ""},
		{"POST", "/pub?topic=t", 404, "NOT_FOUND", ""},
		{"GET", "/stats", 404, "NOT_FOUND", ""},
		{"POST", "/ping", 405, "METHOD_NOT_ALLOWED", "GET"},
		{"PUT", "/lookup?topic=t", 405, "METHOD_NOT_ALLOWED", "GET"},
		{"DELETE", "/debug", 405, "METHOD_NOT_ALLOWED", "GET"},
		{"GET", "/topic/create?topic=t", 405, "METHOD_NOT_ALLOWED", "POST"},
		{"GET", "/topic/delete?topic=t", 405, "METHOD_NOT_ALLOWED", "POST"},
		{"GET", "/channel/create?topic=t&channel=c", 405, "METHOD_NOT_ALLOWED", "POST"},
		{"GET", "/channel/delete?topic=t&channel=c", 405, "METHOD_NOT_ALLOWED", "POST"},
		{"GET", "/topic/tombstone?topic=t&node=a:1", 405, "METHOD_NOT_ALLOWED", "POST"},
		{"POST", "/debug/pprof/heap", 405, "METHOD_NOT_ALLOWED", "GET"},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := do(t, s, tc.method, tc.path)
			want := `{"message":"` + tc.message + `"}`
			if r.code != tc.code || r.body != want {
				t.Errorf("%s %s = %d %s, want %d %s", tc.method, tc.path, r.code, r.body, tc.code, want)
			}
			if ct := r.header.Get("Content-Type"); ct != jsonType {
				t.Errorf("%s %s: Content-Type = %q, want %q", tc.method, tc.path, ct, jsonType)
			}
			if got := r.header.Get("Allow"); got != tc.allow {
				t.Errorf("%s %s: Allow = %q, want %q", tc.method, tc.path, got, tc.allow)
			}
		})
	}
	// The failed requests changed nothing.
	if got, want := get(t, s, "/lookup?topic=t"), `{"channels":["c"],"producers":[]}`; got != want {
		t.Errorf("/lookup?topic=t = %s, want %s", got, want)
	}
	if got, want := get(t, s, "/topics"), `{"topics":["t"]}`; got != want {
		t.Errorf("/topics = %s, want %s", got, want)
	}
}

// TestHTTPRoutes walks the read and write routes without producers, each
// step checking exact status, body and content type.
func TestHTTPRoutes(t *testing.T) {
	s := startServer(t, nil, nil)
	steps := []struct {
		method, path string
		body, ctype  string // want
	}{
		{"GET", "/ping", "OK", "text/plain; charset=utf-8"},
		{"HEAD", "/ping", "", "text/plain; charset=utf-8"},
		{"GET", "/info", `{"version":"1.3.0"}`, jsonType},
		{"GET", "/topics", `{"topics":[]}`, jsonType},
		{"GET", "/channels?topic=x", `{"channels":[]}`, jsonType},
		{"GET", "/channels?topic=", `{"channels":[]}`, jsonType},
		{"GET", "/nodes", `{"producers":[]}`, jsonType},
		{"GET", "/debug", `{}`, jsonType},

		{"POST", "/topic/create?topic=b", "", ""},
		{"POST", "/topic/create?topic=a", "", ""},
		{"POST", "/topic/create?topic=a", "", ""}, // again: no error
		{"POST", "/topic/create?topic=e%23ephemeral", "", ""},
		{"GET", "/topics", `{"topics":["a","b","e#ephemeral"]}`, jsonType},
		{"GET", "/lookup?topic=a", `{"channels":[],"producers":[]}`, jsonType},

		{"POST", "/channel/create?topic=c&channel=z", "", ""}, // registers its topic too
		{"POST", "/channel/create?topic=c&channel=y", "", ""},
		{"GET", "/topics", `{"topics":["a","b","c","e#ephemeral"]}`, jsonType},
		{"GET", "/channels?topic=c", `{"channels":["y","z"]}`, jsonType},
		{"GET", "/lookup?topic=c", `{"channels":["y","z"],"producers":[]}`, jsonType},
		{"GET", "/debug", `{}`, jsonType}, // registrations without producers are not listed

		{"POST", "/channel/delete?topic=c&channel=z", "", ""},
		{"GET", "/channels?topic=c", `{"channels":["y"]}`, jsonType},
		{"GET", "/topics", `{"topics":["a","b","c","e#ephemeral"]}`, jsonType},

		{"POST", "/topic/delete?topic=c", "", ""}, // takes its channels
		{"GET", "/topics", `{"topics":["a","b","e#ephemeral"]}`, jsonType},
		{"GET", "/channels?topic=c", `{"channels":[]}`, jsonType},
		{"GET", "/lookup?topic=c", `{"message":"TOPIC_NOT_FOUND"}`, jsonType},
		{"POST", "/topic/delete?topic=never-created", "", ""},
		{"POST", "/topic/delete?topic=not*valid", "", ""}, // NSQ does not validate here
		{"POST", "/topic/delete?topic=e%23ephemeral", "", ""},
		{"GET", "/topics", `{"topics":["a","b"]}`, jsonType},

		{"POST", "/topic/tombstone?topic=a&node=nowhere:1", "", ""},
		{"POST", "/topic/tombstone?topic=unknown&node=nowhere:1", "", ""},
		{"GET", "/lookup?topic=a", `{"channels":[],"producers":[]}`, jsonType},
	}
	for i, st := range steps {
		r := do(t, s, st.method, st.path)
		wantCode := 200
		if strings.Contains(st.body, `"message"`) {
			wantCode = 404
		}
		if r.code != wantCode || r.body != st.body {
			t.Errorf("step %d: %s %s = %d %q, want %d %q", i, st.method, st.path, r.code, r.body, wantCode, st.body)
		}
		if ct := r.header.Get("Content-Type"); ct != st.ctype {
			t.Errorf("step %d: %s %s: Content-Type = %q, want %q", i, st.method, st.path, ct, st.ctype)
		}
	}
}

// TestHTTPProducers checks /lookup, /nodes and /debug byte for byte with
// producers registered over TCP.
func TestHTTPProducers(t *testing.T) {
	clock := newFakeClock()
	s := startServer(t, nil, clock)
	a := identified(t, s, "a", 4151)
	a.roundTrip("REGISTER t c\n", "OK")
	a.roundTrip("REGISTER u\n", "OK")
	b := identified(t, s, "b", 4152)
	b.roundTrip("REGISTER t\n", "OK")
	pa, pb := producerJSON(a.localAddr(), "a", 4151), producerJSON(b.localAddr(), "b", 4152)
	if a.localAddr() > b.localAddr() {
		t.Fatalf("expected the first connection's port to sort first: %s, %s", a.localAddr(), b.localAddr())
	}

	if got, want := get(t, s, "/lookup?topic=t"), `{"channels":["c"],"producers":`+joinJSON(pa, pb)+`}`; got != want {
		t.Errorf("/lookup?topic=t =\n%s\nwant\n%s", got, want)
	}
	if got, want := get(t, s, "/lookup?topic=u"), `{"channels":[],"producers":[`+pa+`]}`; got != want {
		t.Errorf("/lookup?topic=u =\n%s\nwant\n%s", got, want)
	}

	nodeA := strings.TrimSuffix(pa, "}") + `,"tombstones":[false,false],"topics":["t","u"]}`
	nodeB := strings.TrimSuffix(pb, "}") + `,"tombstones":[false],"topics":["t"]}`
	if got, want := get(t, s, "/nodes"), `{"producers":`+joinJSON(nodeA, nodeB)+`}`; got != want {
		t.Errorf("/nodes =\n%s\nwant\n%s", got, want)
	}

	debugEntry := func(c *v1Client, name string, port int) string {
		return fmt.Sprintf(`{"broadcast_address":%q,"hostname":"host-%s","http_port":%d,"id":%q,"last_update":%d,`+
			`"tcp_port":4150,"tombstoned":false,"tombstoned_at":%s,"topology_region":"r1","topology_zone":"z1","version":"1.3.0"}`,
			name, name, port, c.localAddr(), clock.Now().UnixNano(), zeroTimeNanos)
	}
	da, db := debugEntry(a, "a", 4151), debugEntry(b, "b", 4152)
	want := `{"channel:t:c":[` + da + `],"client::":` + joinJSON(da, db) + `,"topic:t:":` + joinJSON(da, db) + `,"topic:u:":[` + da + `]}`
	if got := get(t, s, "/debug"); got != want {
		t.Errorf("/debug =\n%s\nwant\n%s", got, want)
	}
}

// TestTombstone follows one tombstone through its lifetime on a fake clock.
func TestTombstone(t *testing.T) {
	clock := newFakeClock()
	cfg := testConfig(t)
	s := startServer(t, cfg, clock)
	a := identified(t, s, "a", 4151)
	a.roundTrip("REGISTER t\n", "OK")
	a.roundTrip("REGISTER u\n", "OK")
	b := identified(t, s, "b", 4152)
	b.roundTrip("REGISTER t\n", "OK")
	pa, pb := producerJSON(a.localAddr(), "a", 4151), producerJSON(b.localAddr(), "b", 4152)
	bothT := `{"channels":[],"producers":` + joinJSON(pa, pb) + `}`
	onlyB := `{"channels":[],"producers":[` + pb + `]}`
	onlyA := `{"channels":[],"producers":[` + pa + `]}`

	check := func(step, topic, want string) {
		t.Helper()
		if got := get(t, s, "/lookup?topic="+topic); got != want {
			t.Errorf("%s: /lookup?topic=%s =\n%s\nwant\n%s", step, topic, got, want)
		}
	}
	checkNodes := func(step, tombA string) {
		t.Helper()
		got := get(t, s, "/nodes")
		if want := `"tombstones":` + tombA + `,"topics":["t","u"]`; !strings.Contains(got, want) {
			t.Errorf("%s: /nodes = %s, want a to have %s", step, got, want)
		}
	}

	post(t, s, "/topic/tombstone?topic=t&node=a:4152") // wrong port: nobody
	check("wrong node", "t", bothT)
	post(t, s, "/topic/tombstone?topic=t&node=a:4151")
	tombstonedAt := clock.Now()
	check("tombstoned", "t", onlyB)
	check("tombstoned, other topic", "u", onlyA)
	checkNodes("tombstoned", "[true,false]") // /nodes keeps tombstoned nodes

	a.roundTrip("REGISTER t\n", "OK") // re-registering does not lift it
	check("re-registered", "t", onlyB)

	clock.Advance(cfg.TombstoneLifetime - time.Nanosecond)
	a.roundTrip("PING\n", "OK") // stay active across the lifetime
	check("just before expiry", "t", onlyB)
	clock.Advance(time.Nanosecond)
	check("expired", "t", bothT)
	checkNodes("expired", "[false,false]")
	// The expired tombstone stays recorded, as NSQ's /debug shows.
	if got, want := get(t, s, "/debug"), fmt.Sprintf(`"tombstoned":true,"tombstoned_at":%d`, tombstonedAt.UnixNano()); !strings.Contains(got, want) {
		t.Errorf("/debug = %s, want it to contain %s", got, want)
	}

	// Tombstoning again starts a new lifetime; leaving the topic and
	// registering again starts afresh without a tombstone.
	post(t, s, "/topic/tombstone?topic=t&node=a:4151")
	check("tombstoned again", "t", onlyB)
	a.roundTrip("UNREGISTER t\n", "OK")
	a.roundTrip("REGISTER t\n", "OK")
	check("registered afresh", "t", bothT)
}

func TestTombstoneNodeForms(t *testing.T) {
	tests := []struct {
		broadcast, node string
		hidden          bool
	}{
		{"10.0.0.1", "10.0.0.1:4151", true},
		{"host.example", "host.example:4151", true},
		{"::1", "::1:4151", true},   // NSQ's own form
		{"::1", "[::1]:4151", true}, // nsqadmin's form
		{"10.0.0.1", "10.0.0.1", false},
		{"10.0.0.1", "10.0.0.1:4150", false},
		{"10.0.0.1", "10.0.0.11:4151", false},
	}
	for _, tc := range tests {
		t.Run(tc.broadcast+" "+tc.node, func(t *testing.T) {
			s := startServer(t, nil, nil)
			c := identified(t, s, tc.broadcast, 4151)
			c.roundTrip("REGISTER t\n", "OK")
			post(t, s, "/topic/tombstone?topic=t&node="+tc.node)
			got := get(t, s, "/lookup?topic=t")
			if hidden := got == `{"channels":[],"producers":[]}`; hidden != tc.hidden {
				t.Errorf("tombstone node=%s of producer %s: /lookup = %s, hidden %v, want %v", tc.node, tc.broadcast, got, hidden, tc.hidden)
			}
		})
	}
}

// TestTombstoneExpiresRealTime checks expiry with a short lifetime on the
// real clock.
func TestTombstoneExpiresRealTime(t *testing.T) {
	cfg := testConfig(t)
	cfg.TombstoneLifetime = 500 * time.Millisecond
	s := startServer(t, cfg, nil)
	c := identified(t, s, "a", 4151)
	c.roundTrip("REGISTER t\n", "OK")
	visible := `{"channels":[],"producers":[` + producerJSON(c.localAddr(), "a", 4151) + `]}`

	start := time.Now()
	post(t, s, "/topic/tombstone?topic=t&node=a:4151")
	got := get(t, s, "/lookup?topic=t")
	if elapsed := time.Since(start); elapsed < cfg.TombstoneLifetime/2 && got != `{"channels":[],"producers":[]}` {
		t.Errorf("%v after the tombstone, /lookup = %s, want no producers", elapsed, got)
	}
	waitFor(t, "the tombstone to expire", func() bool { return get(t, s, "/lookup?topic=t") == visible })
	if elapsed := time.Since(start); elapsed < cfg.TombstoneLifetime {
		t.Errorf("tombstone expired after %v, before its lifetime %v", elapsed, cfg.TombstoneLifetime)
	}
}

// TestInactiveProducerRealTime checks that a producer that stops pinging
// disappears from /lookup and /nodes, and that a PING brings it back.
func TestInactiveProducerRealTime(t *testing.T) {
	cfg := testConfig(t)
	cfg.InactiveProducerTimeout = 300 * time.Millisecond
	s := startServer(t, cfg, nil)
	c := identified(t, s, "a", 4151)
	start := time.Now()
	c.roundTrip("REGISTER t\n", "OK")
	visible := `{"channels":[],"producers":[` + producerJSON(c.localAddr(), "a", 4151) + `]}`
	hidden := `{"channels":[],"producers":[]}`

	waitFor(t, "the producer to become inactive", func() bool {
		return get(t, s, "/lookup?topic=t") == hidden && get(t, s, "/nodes") == `{"producers":[]}`
	})
	if elapsed := time.Since(start); elapsed < cfg.InactiveProducerTimeout {
		t.Errorf("hidden after %v, before the timeout %v", elapsed, cfg.InactiveProducerTimeout)
	}
	// Still registered, only hidden.
	if got := get(t, s, "/debug"); !strings.Contains(got, `"topic:t:"`) {
		t.Errorf("/debug = %s, want the registration kept", got)
	}
	pinged := time.Now()
	c.roundTrip("PING\n", "OK")
	got := get(t, s, "/lookup?topic=t")
	if elapsed := time.Since(pinged); elapsed < cfg.InactiveProducerTimeout/2 && got != visible {
		t.Errorf("%v after PING, /lookup = %s, want %s", elapsed, got, visible)
	}
}

func TestPprof(t *testing.T) {
	s := startServer(t, nil, nil)
	tests := []struct {
		method, path, want string
	}{
		{"GET", "/debug/pprof/", "Types of profiles available"},
		{"GET", "/debug/pprof", "Types of profiles available"},
		{"GET", "/debug/pprof/cmdline", ""},
		{"GET", "/debug/pprof/symbol", "num_symbols"},
		{"POST", "/debug/pprof/symbol", "num_symbols"},
		{"GET", "/debug/pprof/heap?debug=1", "heap profile"},
		{"GET", "/debug/pprof/goroutine?debug=1", "goroutine profile"},
		{"GET", "/debug/pprof/block?debug=1", "contention"},
		{"GET", "/debug/pprof/threadcreate?debug=1", "threadcreate profile"},
		{"GET", "/debug/pprof/profile?seconds=1", ""},
	}
	for _, tc := range tests {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			r := do(t, s, tc.method, tc.path)
			if r.code != 200 || !strings.Contains(r.body, tc.want) {
				t.Errorf("%s %s = %d, body %.200q; want 200 containing %q", tc.method, tc.path, r.code, r.body, tc.want)
			}
		})
	}
}

// TestHTTPPanic checks that a handler panic answers 500 INTERNAL_ERROR. A
// Server without a registry panics on any registry route.
func TestHTTPPanic(t *testing.T) {
	s := &Server{log: slog.New(slog.NewTextHandler(t.Output(), nil))}
	rec := httptest.NewRecorder()
	s.httpHandler().ServeHTTP(rec, httptest.NewRequest("GET", "/topics", nil))
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != `{"message":"INTERNAL_ERROR"}` {
		t.Errorf("panicking handler = %d %s, want 500 INTERNAL_ERROR", rec.Code, rec.Body.String())
	}
	if got := rec.Header().Get("X-NSQ-Content-Type"); got != "nsq; version=1.0" {
		t.Errorf("X-NSQ-Content-Type = %q", got)
	}
}
