package nsqadmin

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/nsqx/nsqx/internal/clusterinfo"
	"github.com/nsqx/nsqx/internal/metrics"
)

// Prometheus metrics (GET /metrics). nsqadmin holds no state of the
// cluster to read at scrape time, so unlike nsqd and nsqlookupd it counts
// as it goes: the requests it serves, those it makes to the nodes (through
// clusterinfo's Observe hook), admin actions and notifications. The one
// gauge, nsqadmin_nodes, is computed at scrape time from what nsqadmin's
// last request to each node found; a scrape asks the cluster nothing.
//
// Labels stay bounded: a request is labelled by the ServeMux pattern that
// served it, never its path, and nodes by their kind, never their address
// or topic.

// Outcomes, the result label.
const (
	resultOK      = "ok"
	resultPartial = "partial" // an action some nodes failed
	resultError   = "error"
	resultDropped = "dropped" // a notification never sent
)

// routeNone labels the requests no route served: unknown paths and
// requests refused as cross-origin.
const routeNone = "none"

// actionNames are the action label's values.
var actionNames = []string{"create", "pause", "unpause", "empty", "delete", "tombstone"}

var descNodes = prometheus.NewDesc("nsqadmin_nodes",
	"Nodes of the cluster, by kind, up if nsqadmin's last request to the node got an HTTP answer, down if it did not; nodes not asked yet are not counted.",
	[]string{"kind", "state"}, nil)

// collector is one Server's registry and metrics. It is the Collector of
// nsqadmin_nodes; the other metrics are registered beside it.
type collector struct {
	s       *Server
	reg     *prometheus.Registry
	handler http.Handler

	requests      *prometheus.CounterVec   // route, code
	requestTime   *prometheus.HistogramVec // route
	upstream      *prometheus.CounterVec   // kind, result
	upstreamTime  *prometheus.HistogramVec // kind
	actions       *prometheus.CounterVec   // action, result
	notifications *prometheus.CounterVec   // result

	mu sync.Mutex
	// producers are the HTTP addresses of the nsqds the lookupds listed
	// at the last gather (unused without lookupds).
	producers map[string]bool
	// up is, by address, whether the last request to a node got an
	// answer. Only nodes of the cluster as last seen are kept.
	up map[string]bool
}

func newCollector(s *Server) *collector {
	m := &collector{
		s:   s,
		reg: metrics.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsqadmin_http_requests_total",
			Help: "HTTP requests nsqadmin answered, by the route (method and pattern, without the base path) that served them and status code.",
		}, []string{"route", "code"}),
		requestTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nsqadmin_http_request_duration_seconds",
			Help:    "Time nsqadmin took to answer an HTTP request, by route.",
			Buckets: prometheus.DefBuckets,
		}, []string{"route"}),
		upstream: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsqadmin_upstream_requests_total",
			Help: "HTTP requests nsqadmin made to the cluster's nodes, by kind of node and result (ok: a 2xx answer).",
		}, []string{"kind", "result"}),
		upstreamTime: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "nsqadmin_upstream_request_duration_seconds",
			Help:    "Time a request to a node took, failed ones included, by kind of node.",
			Buckets: prometheus.DefBuckets,
		}, []string{"kind"}),
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsqadmin_actions_total",
			Help: "Admin actions sent to the cluster, by action and result (partial: some nodes failed).",
		}, []string{"action", "result"}),
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "nsqadmin_notifications_total",
			Help: "Notifications of admin actions for --notification-http-endpoint, by result (dropped: queue full or shutting down).",
		}, []string{"result"}),
		producers: map[string]bool{},
		up:        map[string]bool{},
	}
	// The series that can be known in advance start at 0, so that
	// increase() sees their first event.
	for _, kind := range []string{clusterinfo.KindNSQD, clusterinfo.KindLookupd} {
		m.upstream.WithLabelValues(kind, resultOK)
		m.upstream.WithLabelValues(kind, resultError)
		m.upstreamTime.WithLabelValues(kind)
	}
	for _, a := range actionNames {
		for _, r := range []string{resultOK, resultPartial, resultError} {
			m.actions.WithLabelValues(a, r)
		}
	}
	if s.cfg.NotificationHTTPEndpoint != "" {
		for _, r := range []string{resultOK, resultError, resultDropped} {
			m.notifications.WithLabelValues(r)
		}
	}
	m.reg.MustRegister(m, m.requests, m.requestTime, m.upstream, m.upstreamTime, m.actions, m.notifications)
	m.handler = metrics.Handler(m.reg, s.log)
	return m
}

// served records a request nsqadmin answered.
func (m *collector) served(route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
	m.requestTime.WithLabelValues(route).Observe(d.Seconds())
}

// action records an admin action and its error.
func (m *collector) action(action string, err error) {
	result := resultOK
	if err != nil {
		result = resultError
		var pe *clusterinfo.PartialError
		if errors.As(err, &pe) {
			result = resultPartial
		}
	}
	m.actions.WithLabelValues(action, result).Inc()
}

// notified records the fate of a notification.
func (m *collector) notified(result string) {
	m.notifications.WithLabelValues(result).Inc()
}

// upstreamDone is clusterinfo's Observe hook: it counts and times a
// request to a node and notes whether the node answered.
func (m *collector) upstreamDone(kind, addr, _ string, d time.Duration, err error) {
	result := resultOK
	if err != nil {
		result = resultError
	}
	m.upstream.WithLabelValues(kind, result).Inc()
	m.upstreamTime.WithLabelValues(kind).Observe(d.Seconds())
	if errors.Is(err, context.Canceled) {
		return // the request nsqadmin was serving went away, not the node
	}
	// http.Client.Do fails with a *url.Error when there is no response:
	// refused, timed out, TLS failure. Any answer, even an error status
	// or a body that does not decode, means the node is up.
	var ue *url.Error
	up := !errors.As(err, &ue)
	lookupds, nsqds := m.s.addrs()
	m.mu.Lock()
	defer m.mu.Unlock()
	if slices.Contains(lookupds, addr) ||
		len(lookupds) == 0 && slices.Contains(nsqds, addr) ||
		len(lookupds) > 0 && m.producers[addr] {
		m.up[addr] = up
	}
}

// listed records the nsqds the lookupds listed, the nsqds of the cluster
// until the next gather, and forgets the nodes no longer in it.
func (m *collector) listed(producers clusterinfo.Producers) {
	lookupds, _ := m.s.addrs()
	m.mu.Lock()
	defer m.mu.Unlock()
	clear(m.producers)
	for _, p := range producers {
		m.producers[p.HTTPAddress()] = true
	}
	for addr := range m.up {
		if !m.producers[addr] && !slices.Contains(lookupds, addr) {
			delete(m.up, addr)
		}
	}
}

// Describe sends the description of nsqadmin_nodes.
func (m *collector) Describe(ch chan<- *prometheus.Desc) { ch <- descNodes }

// Collect counts the nodes of the cluster as last seen: the lookupds, and
// the nsqds the lookupds listed or, without lookupds, those configured.
func (m *collector) Collect(ch chan<- prometheus.Metric) {
	lookupds, nsqds := m.s.addrs()
	type count struct{ up, down int }
	tally := func(addrs []string) (c count) {
		for i, a := range addrs {
			if slices.Contains(addrs[:i], a) {
				continue // listed twice in the configuration
			}
			switch up, ok := m.up[a]; {
			case !ok:
			case up:
				c.up++
			default:
				c.down++
			}
		}
		return c
	}
	m.mu.Lock()
	if len(lookupds) > 0 {
		nsqds = nsqds[:0:0]
		for a := range m.producers {
			nsqds = append(nsqds, a)
		}
	}
	l, n := tally(lookupds), tally(nsqds)
	m.mu.Unlock()
	for kind, c := range map[string]count{clusterinfo.KindLookupd: l, clusterinfo.KindNSQD: n} {
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(c.up), kind, "up")
		ch <- prometheus.MustNewConstMetric(descNodes, prometheus.GaugeValue, float64(c.down), kind, "down")
	}
}

// recorder is the ResponseWriter handlers see: it keeps the status and
// the route, for the metrics.
type recorder struct {
	http.ResponseWriter
	status int
	route  string
}

func (r *recorder) WriteHeader(code int) {
	if r.status == 0 && code >= 200 { // 1xx answers are not the status
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *recorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController (the Graphite proxy's flushes)
// reach the connection's writer.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// code is the status sent, 200 if the handler wrote nothing.
func (r *recorder) code() int {
	if r.status == 0 {
		return http.StatusOK
	}
	return r.status
}

// routed labels the requests h serves with route.
func routed(route string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if rec, ok := w.(*recorder); ok {
			rec.route = route
		}
		h(w, r)
	}
}
