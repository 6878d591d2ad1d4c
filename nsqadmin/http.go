package nsqadmin

import (
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/klauspost/compress/gzhttp"

	"github.com/nsqx/nsqx/internal/clusterinfo"
	"github.com/nsqx/nsqx/wire"
)

// maxBody bounds a request body nsqadmin reads (JSON actions, PUT /config).
const maxBody = 1 << 20

// handler routes the UI, the JSON API and /config under the base path.
// Unknown paths answer 404 NOT_FOUND and known paths with another method
// 405 METHOD_NOT_ALLOWED, as JSON, as NSQ does. Requests that change
// anything must come from the UI's own origin or from a non-browser
// client (see http.CrossOriginProtection).
func (s *Server) handler() http.Handler {
	mux := http.NewServeMux()
	bp := s.base
	allowed := map[string][]string{}
	var paths []string // without the base path
	route := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+bp+path, routed(method+" "+routeLabel(path), h))
		if _, ok := allowed[path]; !ok {
			paths = append(paths, path)
		}
		allowed[path] = append(allowed[path], method)
	}

	route("GET", "/ping", s.handlePing)
	route("GET", "/metrics", s.metrics.handler.ServeHTTP)
	if bp != "" {
		route("GET", "", s.pageTopics)
	}
	route("GET", "/{$}", s.pageTopics)
	route("GET", "/topics", s.pageTopics)
	route("GET", "/topics/{topic}", s.pageTopic)
	route("GET", "/topics/{topic}/{channel}", s.pageChannel)
	route("GET", "/nodes", s.pageNodes)
	route("GET", "/nodes/{node}", s.pageNode)
	route("GET", "/counter", s.pageCounter)
	route("GET", "/lookup", s.pageLookup)
	route("GET", "/static/{asset...}", s.handleStatic)

	route("GET", "/api/topics", s.apiTopics)
	route("POST", "/api/topics", s.apiCreateTopicChannel)
	route("GET", "/api/topics/{topic}", s.apiTopic)
	route("POST", "/api/topics/{topic}", s.apiTopicAction)
	route("DELETE", "/api/topics/{topic}", s.apiDeleteTopic)
	route("GET", "/api/topics/{topic}/{channel}", s.apiChannel)
	route("POST", "/api/topics/{topic}/{channel}", s.apiChannelAction)
	route("DELETE", "/api/topics/{topic}/{channel}", s.apiDeleteChannel)
	route("GET", "/api/nodes", s.apiNodes)
	route("GET", "/api/nodes/{node}", s.apiNode)
	route("DELETE", "/api/nodes/{node}", s.apiTombstoneNode)
	route("GET", "/api/counter", s.apiCounter)
	route("GET", "/api/overview", s.apiOverview)
	route("GET", "/api/graphite", s.apiGraphite)
	if s.cfg.ProxyGraphite {
		route("GET", "/render", s.graphiteProxy().ServeHTTP)
	}
	route("GET", "/config/{opt}", s.handleConfig)
	route("PUT", "/config/{opt}", s.handleConfig)

	// A pattern with a method beats the same pattern without one, so these
	// only see the methods not routed above.
	for _, path := range paths {
		allow := strings.Join(allowed[path], ", ")
		mux.HandleFunc(bp+path, routed(routeLabel(path), func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		}))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND")
	})

	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.log.Warn("refused cross-origin request", "method", r.Method, "path", r.URL.Path,
			"origin", r.Header.Get("Origin"), "remote_addr", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "CROSS_ORIGIN_REQUEST_REFUSED")
	}))
	h := cop.Handler(mux)

	// Pages, API answers and assets are gzipped for clients that accept
	// it; answers that already chose an encoding, like /metrics, pass
	// through. The recorder sits inside, so it sees each handler's status.
	return gzhttp.GzipHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &recorder{ResponseWriter: w, route: routeNone}
		w = rec
		start := time.Now()
		defer func() { s.metrics.served(rec.route, rec.code(), time.Since(start)) }()
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("HTTP handler panicked", "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
			}
		}()
		h.ServeHTTP(w, r)
	}))
}

// routeLabel is a route's path for the metrics' route label. The base
// path itself ("" here) serves the topics page, as "/" does.
func routeLabel(path string) string {
	if path == "" {
		return "/{$}"
	}
	return path
}

// writeJSON writes v as NSQ's V1 API does.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"message":"INTERNAL_ERROR"}`)
	}
	h := w.Header()
	h.Set("X-NSQ-Content-Type", "nsq; version=1.0")
	h.Set("Content-Type", "application/json; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}

// writeError writes NSQ's error body {"message": msg}.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, struct {
		Message string `json:"message"`
	}{msg})
}

// upstreamError answers a request whose queries all failed.
func upstreamError(w http.ResponseWriter, err error) {
	if errors.Is(err, errNodeNotFound) {
		writeError(w, http.StatusNotFound, "NODE_NOT_FOUND")
		return
	}
	writeError(w, http.StatusBadGateway, "UPSTREAM_ERROR: "+err.Error())
}

// messageOnly is the answer to a write: its warnings.
type messageOnly struct {
	Message string `json:"message"`
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-NSQ-Content-Type", "nsq; version=1.0")
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "OK")
}

func (s *Server) apiTopics(w http.ResponseWriter, r *http.Request) {
	var warn warnings
	if r.URL.Query().Get("inactive") == "true" {
		m, err := s.inactiveTopics(r.Context(), &warn)
		if err != nil {
			upstreamError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, struct {
			Topics  map[string][]string `json:"topics"`
			Message string              `json:"message"`
		}{m, warn.message()})
		return
	}
	topics, err := s.topicList(r.Context(), &warn)
	if err != nil {
		upstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Topics  []string `json:"topics"`
		Message string   `json:"message"`
	}{topics, warn.message()})
}

func (s *Server) apiTopic(w http.ResponseWriter, r *http.Request) {
	var warn warnings
	t, err := s.topic(r.Context(), &warn, r.PathValue("topic"))
	if err != nil {
		upstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		*clusterinfo.TopicStats
		Message string `json:"message"`
	}{t, warn.message()})
}

func (s *Server) apiChannel(w http.ResponseWriter, r *http.Request) {
	var warn warnings
	c, err := s.channel(r.Context(), &warn, r.PathValue("topic"), r.PathValue("channel"))
	if err != nil {
		upstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		*clusterinfo.ChannelStats
		Message string `json:"message"`
	}{c, warn.message()})
}

func (s *Server) apiNodes(w http.ResponseWriter, r *http.Request) {
	var warn warnings
	nodes, err := s.nodes(r.Context(), &warn)
	if err != nil {
		upstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Nodes   any    `json:"nodes"`
		Message string `json:"message"`
	}{nodes, warn.message()})
}

func (s *Server) apiNode(w http.ResponseWriter, r *http.Request) {
	var warn warnings
	v, err := s.node(r.Context(), &warn, r.PathValue("node"))
	if err != nil {
		upstreamError(w, err)
		return
	}
	v.Message = warn.message()
	writeJSON(w, http.StatusOK, v)
}

func (s *Server) apiCounter(w http.ResponseWriter, r *http.Request) {
	var warn warnings
	stats, err := s.counter(r.Context(), &warn)
	if err != nil {
		upstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, struct {
		Stats   map[string]*counterStats `json:"stats"`
		Message string                   `json:"message"`
	}{stats, warn.message()})
}

func (s *Server) apiOverview(w http.ResponseWriter, r *http.Request) {
	var warn warnings
	o, err := s.overview(r.Context(), &warn)
	if err != nil {
		upstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, o)
}

// readBody decodes r's JSON body into v, answering 400 when it cannot.
func readBody(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody)).Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_BODY")
		return false
	}
	return true
}

// admin answers 403 FORBIDDEN unless r may perform admin actions.
func (s *Server) admin(w http.ResponseWriter, r *http.Request) bool {
	if s.isAdmin(r) {
		return true
	}
	s.log.Warn("refused admin action", "method", r.Method, "path", r.URL.Path,
		"user", r.Header.Get(s.cfg.ACLHTTPHeader), "remote_addr", r.RemoteAddr)
	writeError(w, http.StatusForbidden, "FORBIDDEN")
	return false
}

// finish answers a write action (one of actionNames, for the metrics): 502
// when it could not start, otherwise 200 with its partial failures in
// "message".
func (s *Server) finish(w http.ResponseWriter, action, what string, err error) {
	s.metrics.action(action, err)
	var warn warnings
	if err := s.check(&warn, what, err); err != nil {
		upstreamError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, messageOnly{warn.message()})
}

func (s *Server) apiCreateTopicChannel(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	var body struct {
		Topic   string `json:"topic"`
		Channel string `json:"channel"`
	}
	if !readBody(w, r, &body) {
		return
	}
	if !wire.ValidName(body.Topic) {
		writeError(w, http.StatusBadRequest, "INVALID_TOPIC")
		return
	}
	if body.Channel != "" && !wire.ValidName(body.Channel) {
		writeError(w, http.StatusBadRequest, "INVALID_CHANNEL")
		return
	}
	lookupds, nsqds := s.addrs()
	err := s.ci.CreateTopicChannel(r.Context(), body.Topic, body.Channel, lookupds, nsqds)
	s.action(r, "create_topic", body.Topic, "", "")
	if body.Channel != "" {
		s.action(r, "create_channel", body.Topic, body.Channel, "")
	}
	s.finish(w, "create", "create topic/channel", err)
}

func (s *Server) apiTopicAction(w http.ResponseWriter, r *http.Request) {
	s.topicChannelAction(w, r, r.PathValue("topic"), "")
}

func (s *Server) apiChannelAction(w http.ResponseWriter, r *http.Request) {
	s.topicChannelAction(w, r, r.PathValue("topic"), r.PathValue("channel"))
}

// topicChannelAction is POST /api/topics/:topic[/:channel] with
// {"action": "pause" | "unpause" | "empty"}.
func (s *Server) topicChannelAction(w http.ResponseWriter, r *http.Request, topic, channel string) {
	if !s.admin(w, r) {
		return
	}
	var body struct {
		Action string `json:"action"`
	}
	if !readBody(w, r, &body) {
		return
	}
	switch body.Action {
	case "pause", "unpause", "empty":
	default:
		writeError(w, http.StatusBadRequest, "INVALID_ACTION")
		return
	}
	lookupds, nsqds := s.addrs()
	var err error
	if channel != "" {
		err = s.ci.ChannelAction(r.Context(), body.Action, topic, channel, lookupds, nsqds)
		s.action(r, body.Action+"_channel", topic, channel, "")
	} else {
		err = s.ci.TopicAction(r.Context(), body.Action, topic, lookupds, nsqds)
		s.action(r, body.Action+"_topic", topic, "", "")
	}
	s.finish(w, body.Action, body.Action+" topic/channel", err)
}

func (s *Server) apiDeleteTopic(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	topic := r.PathValue("topic")
	lookupds, nsqds := s.addrs()
	err := s.ci.DeleteTopic(r.Context(), topic, lookupds, nsqds)
	s.action(r, "delete_topic", topic, "", "")
	s.finish(w, "delete", "delete topic", err)
}

func (s *Server) apiDeleteChannel(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	topic, channel := r.PathValue("topic"), r.PathValue("channel")
	lookupds, nsqds := s.addrs()
	err := s.ci.DeleteChannel(r.Context(), topic, channel, lookupds, nsqds)
	s.action(r, "delete_channel", topic, channel, "")
	s.finish(w, "delete", "delete channel", err)
}

// apiTombstoneNode is DELETE /api/nodes/:node with {"topic": …}.
func (s *Server) apiTombstoneNode(w http.ResponseWriter, r *http.Request) {
	if !s.admin(w, r) {
		return
	}
	node := r.PathValue("node")
	var body struct {
		Topic string `json:"topic"`
	}
	if !readBody(w, r, &body) {
		return
	}
	if !wire.ValidName(body.Topic) {
		writeError(w, http.StatusBadRequest, "INVALID_TOPIC")
		return
	}
	lookupds, _ := s.addrs()
	err := s.ci.TombstoneNodeForTopic(r.Context(), body.Topic, node, lookupds)
	s.action(r, "tombstone_topic_producer", body.Topic, "", node)
	s.finish(w, "tombstone", "tombstone node for topic", err)
}

// configAllowed answers 403 unless r comes from --allow-config-from-cidr.
func (s *Server) configAllowed(w http.ResponseWriter, r *http.Request) bool {
	if s.cidr == nil {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil {
		writeError(w, http.StatusBadRequest, "INVALID_REMOTE_ADDR")
		return false
	}
	if !s.cidr.Contains(ip) {
		writeError(w, http.StatusForbidden, "FORBIDDEN")
		return false
	}
	return true
}
