package nsqlookupd

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/pprof"
	"net/url"
	"strings"

	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/wire"
)

// httpHandler routes NSQ's lookupd API. Every response carries
// X-NSQ-Content-Type, without which go-nsq expects the legacy wrapped JSON.
// Unknown paths answer 404 NOT_FOUND, known paths with the wrong method 405
// METHOD_NOT_ALLOWED, and a panic 500 INTERNAL_ERROR, all as JSON.
func (s *Server) httpHandler() http.Handler {
	mux := http.NewServeMux()
	allowed := map[string][]string{} // path → methods, for the 405 handler
	var paths []string
	route := func(method, path string, h http.HandlerFunc) {
		mux.HandleFunc(method+" "+path, h)
		if _, ok := allowed[path]; !ok {
			paths = append(paths, path)
		}
		allowed[path] = append(allowed[path], method)
	}

	route("GET", "/ping", s.handlePing)
	route("GET", "/info", s.handleInfo)
	route("GET", "/debug", s.handleDebug)
	route("GET", "/lookup", s.handleLookup)
	route("GET", "/topics", s.handleTopics)
	route("GET", "/channels", s.handleChannels)
	route("GET", "/nodes", s.handleNodes)
	route("POST", "/topic/create", s.handleTopicCreate)
	route("POST", "/topic/delete", s.handleTopicDelete)
	route("POST", "/channel/create", s.handleChannelCreate)
	route("POST", "/channel/delete", s.handleChannelDelete)
	route("POST", "/topic/tombstone", s.handleTopicTombstone)
	route("GET", "/metrics", s.metricsHandler().ServeHTTP) // Prometheus (metrics.go)

	// pprof.Index also serves every named profile under /debug/pprof/. The
	// subtree's 405 handler covers the paths registered directly here.
	route("GET", "/debug/pprof", pprof.Index)
	route("GET", "/debug/pprof/", pprof.Index)
	mux.HandleFunc("GET /debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("GET /debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("GET /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("POST /debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("GET /debug/pprof/trace", pprof.Trace)

	// A pattern with a method beats the same pattern without one, so these
	// only see the methods not routed above.
	for _, path := range paths {
		allow := strings.Join(allowed[path], ", ")
		mux.HandleFunc(path, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Allow", allow)
			writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "NOT_FOUND")
	})

	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-NSQ-Content-Type", "nsq; version=1.0")
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("HTTP handler panicked", "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
			}
		}()
		mux.ServeHTTP(w, r)
	})
}

func (s *Server) handlePing(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	io.WriteString(w, "OK")
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, struct {
		Version string `json:"version"`
	}{version.Compat})
}

func (s *Server) handleDebug(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, s.reg.debug())
}

func (s *Server) handleTopics(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, struct {
		Topics []string `json:"topics"`
	}{s.reg.topicNames()})
}

func (s *Server) handleChannels(w http.ResponseWriter, r *http.Request) {
	_, topic, ok := topicArg(w, r)
	if !ok {
		return
	}
	writeJSON(w, struct {
		Channels []string `json:"channels"`
	}{s.reg.channelNames(topic)})
}

func (s *Server) handleLookup(w http.ResponseWriter, r *http.Request) {
	_, topic, ok := topicArg(w, r)
	if !ok {
		return
	}
	channels, producers, ok := s.reg.lookup(topic)
	if !ok {
		writeError(w, http.StatusNotFound, "TOPIC_NOT_FOUND")
		return
	}
	writeJSON(w, struct {
		Channels  []string   `json:"channels"`
		Producers []peerInfo `json:"producers"`
	}{channels, producers})
}

func (s *Server) handleNodes(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, struct {
		Producers []node `json:"producers"`
	}{s.reg.nodes()})
}

func (s *Server) handleTopicCreate(w http.ResponseWriter, r *http.Request) {
	_, topic, ok := topicArg(w, r)
	if !ok {
		return
	}
	if !wire.ValidName(topic) {
		writeError(w, http.StatusBadRequest, "INVALID_ARG_TOPIC")
		return
	}
	s.reg.addTopic(topic)
	s.log.Info("topic created", "topic", topic)
	writeEmpty(w)
}

// handleTopicDelete drops a topic and its channels. As in NSQ the name is
// not validated and deleting an unknown topic succeeds.
func (s *Server) handleTopicDelete(w http.ResponseWriter, r *http.Request) {
	_, topic, ok := topicArg(w, r)
	if !ok {
		return
	}
	s.reg.deleteTopic(topic)
	s.log.Info("topic deleted", "topic", topic)
	writeEmpty(w)
}

func (s *Server) handleChannelCreate(w http.ResponseWriter, r *http.Request) {
	topic, channel, ok := topicChannelArgs(w, r)
	if !ok {
		return
	}
	s.reg.addChannel(topic, channel)
	s.log.Info("channel created", "topic", topic, "channel", channel)
	writeEmpty(w)
}

func (s *Server) handleChannelDelete(w http.ResponseWriter, r *http.Request) {
	topic, channel, ok := topicChannelArgs(w, r)
	if !ok {
		return
	}
	if !s.reg.deleteChannel(topic, channel) {
		writeError(w, http.StatusNotFound, "CHANNEL_NOT_FOUND")
		return
	}
	s.log.Info("channel deleted", "topic", topic, "channel", channel)
	writeEmpty(w)
}

// handleTopicTombstone hides one node's producer of a topic from /lookup
// for the tombstone lifetime. An unknown topic or node is not an error.
func (s *Server) handleTopicTombstone(w http.ResponseWriter, r *http.Request) {
	q, topic, ok := topicArg(w, r)
	if !ok {
		return
	}
	node, ok := q.get("node")
	if !ok {
		writeError(w, http.StatusBadRequest, "MISSING_ARG_NODE")
		return
	}
	n := s.reg.tombstone(topic, node)
	s.log.Info("producer tombstoned", "topic", topic, "node", node, "matched", n)
	writeEmpty(w)
}

// queryParams are a request's query parameters; as in NSQ the body is ignored.
type queryParams url.Values

// query parses the query string, answering 400 INVALID_REQUEST when it is
// malformed.
func query(w http.ResponseWriter, r *http.Request) (queryParams, bool) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST")
		return nil, false
	}
	return queryParams(q), true
}

// get returns the first value of key. A key given with an empty value
// ("?topic=") is present, as in NSQ.
func (p queryParams) get(key string) (string, bool) {
	v, ok := p[key]
	if !ok || len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// topicChannelArgs reads and validates topic and channel, answering 400
// with NSQ's codes when either is missing or invalid.
// topicArg parses the query and returns its topic parameter, answering
// 400 MISSING_ARG_TOPIC when there is none (the name is not validated).
func topicArg(w http.ResponseWriter, r *http.Request) (queryParams, string, bool) {
	q, ok := query(w, r)
	if !ok {
		return nil, "", false
	}
	topic, ok := q.get("topic")
	if !ok {
		writeError(w, http.StatusBadRequest, "MISSING_ARG_TOPIC")
		return nil, "", false
	}
	return q, topic, true
}

func topicChannelArgs(w http.ResponseWriter, r *http.Request) (topic, channel string, ok bool) {
	q, ok := query(w, r)
	if !ok {
		return "", "", false
	}
	if topic, ok = q.get("topic"); !ok {
		writeError(w, http.StatusBadRequest, "MISSING_ARG_TOPIC")
		return "", "", false
	}
	if !wire.ValidName(topic) {
		writeError(w, http.StatusBadRequest, "INVALID_ARG_TOPIC")
		return "", "", false
	}
	if channel, ok = q.get("channel"); !ok {
		writeError(w, http.StatusBadRequest, "MISSING_ARG_CHANNEL")
		return "", "", false
	}
	if !wire.ValidName(channel) {
		writeError(w, http.StatusBadRequest, "INVALID_ARG_CHANNEL")
		return "", "", false
	}
	return topic, channel, true
}

// writeJSON answers 200 with v as JSON (encoding/json, HTML-escaped and
// without a trailing newline, byte for byte what NSQ sends).
func writeJSON(w http.ResponseWriter, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	w.Write(body)
}

// writeEmpty answers 200 with no body, as NSQ does for the POST routes.
func writeEmpty(w http.ResponseWriter) { w.WriteHeader(http.StatusOK) }

// writeError answers code with {"message": msg}.
func writeError(w http.ResponseWriter, code int, msg string) {
	body, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(code)
	w.Write(body)
}
