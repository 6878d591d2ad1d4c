package nsqd_test

// /stats parity: the JSON checked field by field against NSQ 1.3's schema
// (names, JSON types, nulls and omissions under each filter) while real
// go-nsq traffic runs over TLS, snappy and deflate, its figures checked
// against that traffic, and the text report checked line by line against
// the JSON. The traffic helper is shared with metrics_test.go and
// statsd_test.go.

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
)

// traffic is what runTraffic did, for the tests to check figures against.
type traffic struct {
	n    *nsqtest.NSQD
	base string // http://host:port

	ordersMsgs, ordersBytes uint64 // published to "orders", all ways
	auditMsgs, auditBytes   uint64
	tcpOrders, tcpAudit     uint64 // by the go-nsq producer (pub_counts)
	workFins                uint64 // FINs on orders/work
	requeued                uint64 // REQs on orders/work
	timedOut                uint64 // timeouts on orders/slow
	deferred                int    // DPUB messages not yet due
}

// trafficConfig is nsqd for runTraffic: TLS, E2E percentiles.
func trafficConfig(t *testing.T) func(*nsqd.Config) {
	cert, key := httpWriteCert(t)
	return func(c *nsqd.Config) {
		c.TLSCert, c.TLSKey = cert, key
		c.E2EProcessingLatencyPercentiles = []float64{1.0, 0.99, 0.5}
	}
}

// runTraffic drives n with go-nsq and HTTP until everything settles:
//
//   - "orders": 10 PUB, an MPUB of 5 and a DPUB due in an hour from a
//     go-nsq producer, 2 HTTP /pub; channels "work" (a TLS + snappy
//     consumer that requeues o3 and o4 once, then FINs everything), "slow"
//     (a deflate consumer with a 1s message timeout that lets o5 time out
//     once) and "idle" (no consumer);
//   - "audit": 3 PUB, channel "ch" with a plain consumer.
//
// The consumers stay connected until the test ends.
func runTraffic(t *testing.T, n *nsqtest.NSQD) *traffic {
	t.Helper()
	tr := &traffic{n: n, base: "http://" + n.HTTPAddr}
	httpOK(t, "POST", tr.base+"/topic/create?topic=orders", nil)
	for _, ch := range []string{"work", "slow", "idle"} {
		httpOK(t, "POST", tr.base+"/channel/create?topic=orders&channel="+ch, nil)
	}
	httpOK(t, "POST", tr.base+"/topic/create?topic=audit", nil)
	httpOK(t, "POST", tr.base+"/channel/create?topic=audit&channel=ch", nil)

	var mu sync.Mutex
	requeueOnce := map[string]bool{"o3": true, "o4": true}
	work := nsq.NewConfig()
	work.TlsV1 = true
	work.TlsConfig = &tls.Config{InsecureSkipVerify: true}
	work.Snappy = true
	work.UserAgent = "stats-test-work/1.0"
	startConsumer(t, n.TCPAddr, "orders", "work", work, 1, func(m *nsq.Message) error {
		m.DisableAutoResponse()
		mu.Lock()
		req := requeueOnce[string(m.Body)]
		delete(requeueOnce, string(m.Body))
		mu.Unlock()
		if req {
			m.RequeueWithoutBackoff(0)
		} else {
			m.Finish()
		}
		return nil
	})
	tr.requeued = 2

	slow := nsq.NewConfig()
	slow.Deflate = true
	slow.DeflateLevel = 3
	slow.MsgTimeout = time.Second
	slow.UserAgent = "stats-test-slow/1.0"
	startConsumer(t, n.TCPAddr, "orders", "slow", slow, 2, func(m *nsq.Message) error {
		if string(m.Body) == "o5" && m.Attempts == 1 {
			m.DisableAutoResponse() // never answered: times out
		}
		return nil
	})
	tr.timedOut = 1

	audit := nsq.NewConfig()
	audit.UserAgent = "stats-test-audit/1.0"
	startConsumer(t, n.TCPAddr, "audit", "ch", audit, 1, func(*nsq.Message) error { return nil })
	waitReady(t, n, "orders", "work", 1)
	waitReady(t, n, "orders", "slow", 1)
	waitReady(t, n, "audit", "ch", 1)

	p := newProducer(t, n.TCPAddr)
	pub := func(topic, body string) {
		t.Helper()
		if err := p.Publish(topic, []byte(body)); err != nil {
			t.Fatalf("publish %s: %v", topic, err)
		}
	}
	for i := range 10 {
		b := fmt.Sprintf("o%d", i)
		pub("orders", b)
		tr.ordersBytes += uint64(len(b))
	}
	var batch [][]byte
	for i := range 5 {
		batch = append(batch, fmt.Appendf(nil, "batch-%d", i))
		tr.ordersBytes += uint64(len(batch[i]))
	}
	if err := p.MultiPublish("orders", batch); err != nil {
		t.Fatalf("mpub: %v", err)
	}
	if err := p.DeferredPublish("orders", time.Hour, []byte("later")); err != nil {
		t.Fatalf("dpub: %v", err)
	}
	tr.ordersBytes += uint64(len("later"))
	tr.tcpOrders = 16
	tr.deferred = 1
	for _, b := range []string{"h1", "h22"} {
		httpOK(t, "POST", tr.base+"/pub?topic=orders", b)
		tr.ordersBytes += uint64(len(b))
	}
	tr.ordersMsgs = 18
	for _, b := range []string{"a1", "a2", "a3"} {
		pub("audit", b)
		tr.auditBytes += uint64(len(b))
	}
	tr.tcpAudit, tr.auditMsgs = 3, 3
	tr.workFins = tr.ordersMsgs - uint64(tr.deferred)

	// Settled: every message but the deferred one finished on both
	// consumed channels, the timeout and the requeues counted.
	nsqtest.Eventually(t, 10*time.Second, "traffic settled", func() bool {
		w, s, a := mustChannelStats(t, n, "orders", "work"), mustChannelStats(t, n, "orders", "slow"), mustChannelStats(t, n, "audit", "ch")
		_, wf := sumClients(w)
		_, sf := sumClients(s)
		_, af := sumClients(a)
		return wf == tr.workFins && sf == tr.workFins && af == tr.auditMsgs &&
			w.Depth == 0 && w.InFlightCount == 0 && s.Depth == 0 && s.InFlightCount == 0 &&
			w.RequeueCount == tr.requeued && s.TimeoutCount == tr.timedOut
	})
	return tr
}

// jsonType is a JSON value's kind as NSQ's schema states it.
type jsonType int

const (
	jString jsonType = iota
	jNumber
	jBool
	jObject
	jArray
)

func (k jsonType) String() string {
	return [...]string{"string", "number", "bool", "object", "array"}[k]
}

// schema is the shape of a JSON value: its kind, for an object its fields,
// for an array its element.
type schema struct {
	kind   jsonType
	fields []field
	elem   *schema
}

// field is one object member. nullable: may be null. optional: may be
// missing (NSQ's omitempty).
type field struct {
	name               string
	s                  *schema
	nullable, optional bool
}

var (
	sString = &schema{kind: jString}
	sNumber = &schema{kind: jNumber}
	sBool   = &schema{kind: jBool}
)

func object(fs ...field) *schema    { return &schema{kind: jObject, fields: fs} }
func array(elem *schema) *schema    { return &schema{kind: jArray, elem: elem} }
func req(n string, s *schema) field { return field{name: n, s: s} }
func null(n string, s *schema) field {
	return field{name: n, s: s, nullable: true}
}
func opt(n string, s *schema) field { return field{name: n, s: s, optional: true} }

// NSQ 1.3's /stats?format=json (nsqd/stats.go, nsqd/http.go, the master
// branch's topology counters as optional).
var (
	nsqE2E = object(
		req("count", sNumber),
		null("percentiles", array(object(req("quantile", sNumber), req("value", sNumber)))),
	)
	nsqClient = object(
		req("client_id", sString), req("hostname", sString), req("version", sString),
		req("remote_address", sString), req("state", sNumber), req("ready_count", sNumber),
		req("in_flight_count", sNumber), req("message_count", sNumber), req("finish_count", sNumber),
		req("requeue_count", sNumber), req("connect_ts", sNumber), req("sample_rate", sNumber),
		req("deflate", sBool), req("snappy", sBool), req("user_agent", sString),
		opt("authed", sBool), opt("auth_identity", sString), opt("auth_identity_url", sString),
		req("topology_zone", sString), req("topology_region", sString),
		opt("zone_local_msg_count", sNumber), opt("region_local_msg_count", sNumber), opt("global_msg_count", sNumber),
		opt("pub_counts", array(object(req("topic", sString), req("count", sNumber)))),
		req("tls", sBool), req("tls_cipher_suite", sString), req("tls_version", sString),
		req("tls_negotiated_protocol", sString), req("tls_negotiated_protocol_is_mutual", sBool),
	)
	nsqChannel = object(
		req("channel_name", sString), req("depth", sNumber), req("backend_depth", sNumber),
		req("in_flight_count", sNumber), req("deferred_count", sNumber), req("message_count", sNumber),
		req("requeue_count", sNumber), req("timeout_count", sNumber), req("client_count", sNumber),
		null("clients", array(nsqClient)), req("paused", sBool),
		opt("zone_local_msg_count", sNumber), opt("region_local_msg_count", sNumber), opt("global_msg_count", sNumber),
		req("e2e_processing_latency", nsqE2E),
	)
	nsqTopic = object(
		req("topic_name", sString), req("channels", array(nsqChannel)), req("depth", sNumber),
		req("backend_depth", sNumber), req("message_count", sNumber), req("message_bytes", sNumber),
		req("paused", sBool), req("e2e_processing_latency", nsqE2E),
	)
	nsqMemory = object(
		req("heap_objects", sNumber), req("heap_idle_bytes", sNumber), req("heap_in_use_bytes", sNumber),
		req("heap_released_bytes", sNumber), req("gc_pause_usec_100", sNumber), req("gc_pause_usec_99", sNumber),
		req("gc_pause_usec_95", sNumber), req("next_gc_bytes", sNumber), req("gc_total_runs", sNumber),
	)
	nsqStats = object(
		req("version", sString), req("health", sString), req("start_time", sNumber),
		null("topics", array(nsqTopic)), opt("memory", nsqMemory), null("producers", array(nsqClient)),
	)
)

// checkSchema reports every difference between v and s: a missing or
// extra member, a wrong JSON type, a null where none is allowed.
func checkSchema(t *testing.T, path string, v any, s *schema) {
	t.Helper()
	switch s.kind {
	case jString:
		if _, ok := v.(string); !ok {
			t.Errorf("%s = %#v, want a string", path, v)
		}
	case jNumber:
		if _, ok := v.(float64); !ok {
			t.Errorf("%s = %#v, want a number", path, v)
		}
	case jBool:
		if _, ok := v.(bool); !ok {
			t.Errorf("%s = %#v, want a bool", path, v)
		}
	case jArray:
		a, ok := v.([]any)
		if !ok {
			t.Errorf("%s = %#v, want an array", path, v)
			return
		}
		for i, e := range a {
			checkSchema(t, fmt.Sprintf("%s[%d]", path, i), e, s.elem)
		}
	case jObject:
		m, ok := v.(map[string]any)
		if !ok {
			t.Errorf("%s = %#v, want an object", path, v)
			return
		}
		known := map[string]bool{}
		for _, f := range s.fields {
			known[f.name] = true
			fv, present := m[f.name]
			switch {
			case !present:
				if !f.optional {
					t.Errorf("%s has no %q", path, f.name)
				}
			case fv == nil:
				if !f.nullable {
					t.Errorf("%s.%s is null, want a %v", path, f.name, f.s.kind)
				}
			default:
				checkSchema(t, path+"."+f.name, fv, f.s)
			}
		}
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if !known[k] {
				t.Errorf("%s has %q, which NSQ's schema does not", path, k)
			}
		}
	}
}

// statsJSON is GET /stats?format=json&query, decoded generically.
func statsJSON(t *testing.T, base, query string) map[string]any {
	t.Helper()
	m := httpGetJSON(t, base+"/stats?format=json&"+query)
	checkSchema(t, "/stats?"+query, m, nsqStats)
	return m
}

// obj walks a decoded JSON value: string keys index objects, ints arrays.
func obj(t *testing.T, v any, path ...any) any {
	t.Helper()
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				t.Fatalf("%v: not an object at %q", path, k)
			}
			v = m[k]
		case int:
			a, ok := v.([]any)
			if !ok || k >= len(a) {
				t.Fatalf("%v: no element %d", path, k)
			}
			v = a[k]
		}
	}
	return v
}

// named finds the element of a JSON array whose key equals name.
func named(t *testing.T, v any, key, name string) map[string]any {
	t.Helper()
	a, _ := v.([]any)
	for _, e := range a {
		if m, ok := e.(map[string]any); ok && m[key] == name {
			return m
		}
	}
	t.Fatalf("no element with %s=%q in %v", key, name, v)
	return nil
}

func TestStatsSchemaUnderTraffic(t *testing.T) {
	n := nsqtest.StartNSQD(t, trafficConfig(t))
	tr := runTraffic(t, n)

	m := statsJSON(t, tr.base, "")
	if m["version"] != "1.3.0" || m["health"] != "OK" {
		t.Errorf("version, health = %v, %v", m["version"], m["health"])
	}
	topics := m["topics"].([]any)
	if names := []any{obj(t, topics, 0, "topic_name"), obj(t, topics, 1, "topic_name")}; len(topics) != 2 || names[0] != "audit" || names[1] != "orders" {
		t.Fatalf("topics %v, want audit and orders in that order", names)
	}
	num := func(v any) float64 { f, _ := v.(float64); return f }

	orders := named(t, topics, "topic_name", "orders")
	for k, want := range map[string]float64{
		"message_count": float64(tr.ordersMsgs), "message_bytes": float64(tr.ordersBytes),
		"depth": 0, "backend_depth": 0,
	} {
		if got := num(orders[k]); got != want {
			t.Errorf("orders %s = %v, want %v", k, got, want)
		}
	}
	if cs := orders["channels"].([]any); len(cs) != 3 || obj(t, cs, 0, "channel_name") != "idle" || obj(t, cs, 1, "channel_name") != "slow" || obj(t, cs, 2, "channel_name") != "work" {
		t.Errorf("orders channels not idle, slow, work in order: %v", cs)
	}
	idleWant := map[string]float64{"depth": float64(tr.workFins), "deferred_count": float64(tr.deferred), "message_count": float64(tr.ordersMsgs),
		"in_flight_count": 0, "requeue_count": 0, "timeout_count": 0, "client_count": 0}
	workWant := map[string]float64{"depth": 0, "deferred_count": float64(tr.deferred), "message_count": float64(tr.ordersMsgs),
		"in_flight_count": 0, "requeue_count": float64(tr.requeued), "timeout_count": 0, "client_count": 1}
	slowWant := map[string]float64{"depth": 0, "deferred_count": float64(tr.deferred), "message_count": float64(tr.ordersMsgs),
		"in_flight_count": 0, "requeue_count": 0, "timeout_count": float64(tr.timedOut), "client_count": 1}
	for name, want := range map[string]map[string]float64{"idle": idleWant, "work": workWant, "slow": slowWant} {
		ch := named(t, orders["channels"], "channel_name", name)
		for k, w := range want {
			if got := num(ch[k]); got != w {
				t.Errorf("orders/%s %s = %v, want %v", name, k, got, w)
			}
		}
	}

	// E2E: the work channel's FINs, the topic's merged over its channels.
	work := named(t, orders["channels"], "channel_name", "work")
	if c := num(obj(t, work, "e2e_processing_latency", "count")); c != float64(tr.workFins) {
		t.Errorf("work e2e count = %v, want %d FINs", c, tr.workFins)
	}
	if c := num(obj(t, orders, "e2e_processing_latency", "count")); c != float64(2*tr.workFins) {
		t.Errorf("orders e2e count = %v, want %d (work and slow)", c, 2*tr.workFins)
	}
	ps := obj(t, work, "e2e_processing_latency", "percentiles").([]any)
	if len(ps) != 3 {
		t.Fatalf("work percentiles = %v, want 3", ps)
	}
	prev := 1e18
	for i, q := range []float64{1.0, 0.99, 0.5} {
		p := ps[i].(map[string]any)
		v := num(p["value"])
		if num(p["quantile"]) != q || v <= 0 || v > float64(time.Minute) || v > prev {
			t.Errorf("percentile %d = %v, want quantile %v, 0 < value (ns) ≤ the one above", i, p, q)
		}
		prev = v
	}

	// Clients: the transports each negotiated, the counts of their traffic.
	wc := obj(t, work, "clients", 0).(map[string]any)
	if wc["tls"] != true || wc["snappy"] != true || wc["deflate"] != false || wc["user_agent"] != "stats-test-work/1.0" {
		t.Errorf("work client tls, snappy, deflate, user_agent = %v, %v, %v, %v", wc["tls"], wc["snappy"], wc["deflate"], wc["user_agent"])
	}
	if v, _ := wc["tls_version"].(string); !strings.HasPrefix(v, "TLS1.") || wc["tls_cipher_suite"] == "" {
		t.Errorf("work client tls_version, tls_cipher_suite = %v, %v", wc["tls_version"], wc["tls_cipher_suite"])
	}
	for k, want := range map[string]float64{"state": 3, "finish_count": float64(tr.workFins), "requeue_count": float64(tr.requeued),
		"message_count": float64(tr.workFins + tr.requeued), "in_flight_count": 0, "sample_rate": 0} {
		if got := num(wc[k]); got != want {
			t.Errorf("work client %s = %v, want %v", k, got, want)
		}
	}
	if got := num(wc["ready_count"]); got < 1 {
		t.Errorf("work client ready_count = %v, want ≥ 1", got)
	}
	if ts := num(wc["connect_ts"]); time.Since(time.Unix(int64(ts), 0)) > time.Minute {
		t.Errorf("connect_ts = %v, want about now", ts)
	}
	sc := obj(t, named(t, orders["channels"], "channel_name", "slow"), "clients", 0).(map[string]any)
	if sc["deflate"] != true || sc["snappy"] != false || sc["tls"] != false || sc["tls_version"] != "" {
		t.Errorf("slow client deflate, snappy, tls, tls_version = %v, %v, %v, %q", sc["deflate"], sc["snappy"], sc["tls"], sc["tls_version"])
	}
	if got := num(sc["message_count"]); got != float64(tr.workFins+tr.timedOut) {
		t.Errorf("slow client message_count = %v, want %d (one redelivery after the timeout)", got, tr.workFins+tr.timedOut)
	}

	// The producer: one connection, its pub_counts per topic.
	producers := m["producers"].([]any)
	if len(producers) != 1 {
		t.Fatalf("producers = %v, want the go-nsq producer", producers)
	}
	wantPC := []any{
		map[string]any{"topic": "audit", "count": float64(tr.tcpAudit)},
		map[string]any{"topic": "orders", "count": float64(tr.tcpOrders)},
	}
	if pc := obj(t, producers, 0, "pub_counts"); fmt.Sprint(pc) != fmt.Sprint(wantPC) {
		t.Errorf("pub_counts = %v, want %v", pc, wantPC)
	}
	if c := num(obj(t, m, "memory", "gc_total_runs")); c < 0 {
		t.Errorf("gc_total_runs = %v", c)
	}

	// Filters: every answer still has NSQ's shape (statsJSON checks it).
	t.Run("include_clients=false", func(t *testing.T) {
		m := statsJSON(t, tr.base, "include_clients=false")
		if p, ok := m["producers"]; !ok || p != nil {
			t.Errorf("producers = %#v, want null", p)
		}
		for _, tp := range m["topics"].([]any) {
			for _, ch := range tp.(map[string]any)["channels"].([]any) {
				if c, ok := ch.(map[string]any)["clients"]; !ok || c != nil {
					t.Errorf("clients = %#v, want null", c)
				}
			}
		}
	})
	t.Run("include_mem=false", func(t *testing.T) {
		if _, ok := statsJSON(t, tr.base, "include_mem=false")["memory"]; ok {
			t.Errorf("memory present")
		}
	})
	t.Run("topic=orders", func(t *testing.T) {
		m := statsJSON(t, tr.base, "topic=orders")
		if ts := m["topics"].([]any); len(ts) != 1 {
			t.Errorf("topics = %v, want orders only", ts)
		}
		want := []any{map[string]any{"topic": "orders", "count": float64(tr.tcpOrders)}}
		if pc := obj(t, m, "producers", 0, "pub_counts"); fmt.Sprint(pc) != fmt.Sprint(want) {
			t.Errorf("pub_counts = %v, want only orders: %v", pc, want)
		}
	})
	t.Run("topic=orders&channel=idle", func(t *testing.T) {
		cs := obj(t, statsJSON(t, tr.base, "topic=orders&channel=idle"), "topics", 0, "channels").([]any)
		if len(cs) != 1 || obj(t, cs, 0, "channel_name") != "idle" {
			t.Errorf("channels = %v, want idle only", cs)
		}
	})
	t.Run("channel=ch", func(t *testing.T) {
		ts := statsJSON(t, tr.base, "channel=ch")["topics"].([]any)
		if len(ts) != 1 || obj(t, ts, 0, "topic_name") != "audit" {
			t.Errorf("topics = %v, want audit, the only one with channel ch", ts)
		}
	})
	t.Run("topic=unknown", func(t *testing.T) {
		m := statsJSON(t, tr.base, "topic=unknown")
		for _, k := range []string{"topics", "producers"} {
			if v, ok := m[k]; !ok || v != nil {
				t.Errorf("%s = %#v, want null", k, v)
			}
		}
	})
	t.Run("text", func(t *testing.T) { checkText(t, tr.base) })
}

// checkText compares the text report with the JSON one, line by line, in
// NSQ's layout (nsqd/http.go printStats). The traffic has settled, so the
// two agree on every figure; only times differ.
func checkText(t *testing.T, base string) {
	var st nsqd.Stats
	if err := json.Unmarshal([]byte(httpRequest(t, "GET", base+"/stats?format=json&include_mem=false", nil).body), &st); err != nil {
		t.Fatal(err)
	}
	text := httpRequest(t, "GET", base+"/stats?include_mem=false", nil).body
	e2e := func(p nsqd.Percentiles) string {
		var vals []string
		for _, q := range p.Percentiles {
			v, unit := q["value"], "ns"
			switch {
			case v > 1e9:
				v, unit = v/1e9, "s"
			case v > 1e6:
				v, unit = v/1e6, "ms"
			case v > 1e3:
				v, unit = v/1e3, "us"
			}
			vals = append(vals, fmt.Sprintf("%.1f%s", v, unit))
		}
		return strings.Join(vals, ", ")
	}
	client := func(c nsqd.ClientStats) string {
		_, port, _ := net.SplitHostPort(c.RemoteAddress)
		id := c.Hostname + ":" + port + " " + c.UserAgent
		if len(c.PubCounts) > 0 {
			var total uint64
			var topics []string
			for _, pc := range c.PubCounts {
				total += pc.Count
				topics = append(topics, fmt.Sprintf("%s=%d", pc.Topic, pc.Count))
			}
			return fmt.Sprintf("[%s %-21s] msgs: %-8d topics: %s connected: ", c.Version, id, total, strings.Join(topics, ","))
		}
		return fmt.Sprintf("[%s %-21s] state: %d inflt: %-4d rdy: %-4d fin: %-8d re-q: %-8d msgs: %-8d connected: ",
			c.Version, id, c.State, c.InFlightCount, c.ReadyCount, c.FinishCount, c.RequeueCount, c.MessageCount)
	}
	want := []string{"", "Health: OK", "", "Topics:"}
	for i, tp := range st.Topics {
		if i > 0 {
			want = append(want, "") // each topic line starts with a newline
		}
		want = append(want, fmt.Sprintf("   [%-15s] depth: %-5d be-depth: %-5d msgs: %-8d e2e%%: %s",
			tp.TopicName, tp.Depth, tp.BackendDepth, tp.MessageCount, e2e(tp.E2E)))
		for _, c := range tp.Channels {
			want = append(want, fmt.Sprintf("      [%-25s] depth: %-5d be-depth: %-5d inflt: %-4d def: %-4d re-q: %-5d timeout: %-5d msgs: %-8d e2e%%: %s",
				c.ChannelName, c.Depth, c.BackendDepth, c.InFlightCount, c.DeferredCount, c.RequeueCount, c.TimeoutCount, c.MessageCount, e2e(c.E2E)))
			for _, cl := range c.Clients {
				want = append(want, "        "+client(cl))
			}
		}
	}
	want = append(want, "", "Producers:")
	for _, p := range st.Producers {
		want = append(want, "   "+client(p))
	}

	lines := strings.Split(strings.TrimSuffix(text, "\n"), "\n")
	if len(lines) < 3 || !strings.HasPrefix(lines[0], "nsqd v1.3.0 ") || !strings.HasPrefix(lines[1], "start_time ") || !strings.HasPrefix(lines[2], "uptime ") {
		t.Fatalf("text report header:\n%s", text)
	}
	if _, err := time.Parse(time.RFC3339, strings.TrimPrefix(lines[1], "start_time ")); err != nil {
		t.Errorf("start_time line %q: %v", lines[1], err)
	}
	lines = lines[3:]
	if len(lines) != len(want) {
		t.Fatalf("text report has %d lines after the header, want %d:\n%s\nwant:\n%s", len(lines), len(want), text, strings.Join(want, "\n"))
	}
	for i, w := range want {
		got := lines[i]
		if strings.HasSuffix(w, "connected: ") {
			d, err := time.ParseDuration(strings.TrimPrefix(got, w))
			if !strings.HasPrefix(got, w) || err != nil || d%time.Second != 0 {
				t.Errorf("text line %d = %q, want %q and a whole number of seconds", i+4, got, w)
			}
			continue
		}
		if got != w {
			t.Errorf("text line %d = %q, want %q", i+4, got, w)
		}
	}
}

// TestStatsE2EWindow checks that latencies age out: with a 400 ms
// --e2e-processing-latency-window-time a FIN counts at once and is gone
// within the window (two halves, so between half and all of it) plus
// slack, and the quantiles reflect how long the consumer held messages.
func TestStatsE2EWindow(t *testing.T) {
	const window = 400 * time.Millisecond
	const hold = 30 * time.Millisecond
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) {
		c.E2EProcessingLatencyPercentiles = []float64{0.5}
		c.E2EProcessingLatencyWindowTime = window
	})
	base := "http://" + n.HTTPAddr
	httpOK(t, "POST", base+"/topic/create?topic=lat", nil)
	httpOK(t, "POST", base+"/channel/create?topic=lat&channel=ch", nil)
	startConsumer(t, n.TCPAddr, "lat", "ch", nil, 1, func(*nsq.Message) error {
		time.Sleep(hold) // the processing time being measured
		return nil
	})
	waitReady(t, n, "lat", "ch", 1)
	p := newProducer(t, n.TCPAddr)
	for range 3 {
		if err := p.Publish("lat", []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	var seen nsqd.Percentiles
	nsqtest.Eventually(t, 5*time.Second, "3 latency samples", func() bool {
		seen = mustChannelStats(t, n, "lat", "ch").E2E
		return seen.Count == 3
	})
	done := time.Now()
	if v := seen.Percentiles[0]["value"]; v < float64(hold)*0.9 || v > float64(5*time.Second) {
		t.Errorf("p50 = %v ns, want at least the %v hold", v, hold)
	}
	nsqtest.Eventually(t, 5*time.Second, "samples aged out of the window", func() bool {
		return mustChannelStats(t, n, "lat", "ch").E2E.Count == 0
	})
	if d := time.Since(done); d < window/4 {
		t.Errorf("samples gone %v after the FINs, want them kept for about half the window (%v) at least", d, window/2)
	}
	// A topic without channels has no latency stream, as in NSQ.
	httpOK(t, "POST", base+"/topic/create?topic=bare", nil)
	if e := httpTopicStats(t, base, "bare").E2E; e.Count != 0 || e.Percentiles != nil {
		t.Errorf("channel-less topic e2e = %+v, want {0 null}", e)
	}
}

// TestStatsBackendDepth checks backend_depth: the messages of a depth
// that are on disk only. With a small --mem-queue-size most of a backlog
// is spilled; with --mem-queue-size=0 (every message on disk) it is all of
// the depth, as in NSQ.
func TestStatsBackendDepth(t *testing.T) {
	body := strings.Repeat("x", 900)
	for _, tt := range []struct {
		name    string
		memSize int64
		check   func(depth, backend int64) bool
	}{
		{"spilled", 10, func(d, b int64) bool { return b > 0 && b < d }},
		{"durable", 0, func(d, b int64) bool { return b == d }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			n := nsqtest.StartNSQD(t, func(c *nsqd.Config) { c.MemQueueSize = tt.memSize })
			base := "http://" + n.HTTPAddr
			httpOK(t, "POST", base+"/topic/create?topic=backlog", nil)
			httpOK(t, "POST", base+"/channel/create?topic=backlog&channel=ch", nil)
			httpOK(t, "POST", base+"/topic/create?topic=alone", nil)
			p := newProducer(t, n.TCPAddr)
			const total = 300
			for _, topic := range []string{"backlog", "alone"} {
				for range total {
					if err := p.Publish(topic, []byte(body)); err != nil {
						t.Fatal(err)
					}
				}
			}
			var c nsqd.ChannelStats
			var tp nsqd.TopicStats
			nsqtest.Eventually(t, 5*time.Second, "the backlog spilled", func() bool {
				c = httpChannelStats(t, base, "backlog", "ch")
				tp = httpTopicStats(t, base, "alone")
				return c.Depth == total && tt.check(c.Depth, c.BackendDepth) && tp.Depth == total && tt.check(tp.Depth, tp.BackendDepth)
			})
			if bt := httpTopicStats(t, base, "backlog"); bt.Depth != 0 || bt.BackendDepth != 0 {
				t.Errorf("topic with a channel: depth %d, backend_depth %d, want 0, 0", bt.Depth, bt.BackendDepth)
			}
		})
	}
}

// TestStatsGCPauses checks the memory block's GC pause percentiles are
// ordered and in microseconds.
func TestStatsGCPauses(t *testing.T) {
	n := nsqtest.StartNSQD(t, nil)
	for range 3 {
		runtime.GC()
	}
	ms := n.Stats(nsqd.StatsFilter{IncludeMem: true}).Memory
	if ms == nil {
		t.Fatal("no memory block with IncludeMem")
	}
	p := []uint64{ms.GCPauseUsec95, ms.GCPauseUsec99, ms.GCPauseUsec100}
	if !sort.SliceIsSorted(p, func(i, j int) bool { return p[i] < p[j] }) || p[2] > 10_000_000 {
		t.Errorf("gc pauses 95/99/100 = %v µs, want ordered and plausible", p)
	}
}
