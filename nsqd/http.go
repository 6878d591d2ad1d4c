package nsqd

import (
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"net/url"
	"os"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/wire"
)

// The HTTP API is NSQ 1.3's, response for response: the same routes, status
// codes, {"message":"CODE"} errors, text bodies and headers. NSQ 1.x answers
// every client the same way whatever its Accept header; the legacy
// "application/vnd.nsq; version=1.0" header is accepted and changes nothing.

// Shared header values, assigned to header maps directly so a response does
// not allocate for them. net/http only reads them.
var (
	hdrNSQContentType = []string{"nsq; version=1.0"}
	hdrJSON           = []string{"application/json; charset=utf-8"}
	hdrText           = []string{"text/plain; charset=utf-8"}
	bodyOK            = []byte("OK")
)

// maxPooledBody is the largest body buffer kept for reuse; bigger ones
// (rare, up to --max-msg-size or --max-body-size) go to the GC.
const maxPooledBody = 256 << 10

// httpAPI serves NSQ's HTTP API for one Server.
type httpAPI struct {
	s   *Server
	log *slog.Logger
	mux *http.ServeMux
	// overTLS is true for the HTTPS listener. The plain listener refuses
	// every request with 403 TLS_REQUIRED under --tls-required=true.
	overTLS bool
	// allow maps each registered path to its Allow header value, for 405
	// and OPTIONS answers. Written only while routes are registered.
	allow map[string]string
	bufs  sync.Pool // *[]byte request bodies
}

// httpHandler is the handler of the plain HTTP listener.
func (s *Server) httpHandler() http.Handler { return newHTTPAPI(s, false) }

// httpsHandler is the handler of the HTTPS listener.
func (s *Server) httpsHandler() http.Handler { return newHTTPAPI(s, true) }

func newHTTPAPI(s *Server, overTLS bool) *httpAPI {
	a := &httpAPI{s: s, log: s.log, mux: http.NewServeMux(), overTLS: overTLS, allow: map[string]string{}}
	methods := map[string][]string{}
	handle := func(method, path string, h http.HandlerFunc) {
		methods[path] = append(methods[path], method)
		if method == http.MethodGet {
			// ServeMux lets HEAD in through a GET pattern; NSQ's router
			// does not.
			get, other := h, a.otherMethod(path)
			h = func(w http.ResponseWriter, r *http.Request) {
				if r.Method != http.MethodGet {
					other(w, r)
					return
				}
				get(w, r)
			}
		}
		a.mux.HandleFunc(method+" "+path, h)
	}

	handle("GET", "/ping", a.logged(a.ping))
	handle("GET", "/info", a.logged(a.info))

	// Not logged, as in NSQ: they are the hot path.
	handle("POST", "/pub", a.pub)
	handle("POST", "/mpub", a.mpub)

	handle("GET", "/stats", a.logged(a.stats))
	handle("GET", "/metrics", a.s.metrics.handler.ServeHTTP) // Prometheus; not logged, scraped often

	handle("POST", "/topic/create", a.logged(a.topicCreate))
	handle("POST", "/topic/delete", a.logged(a.topicDelete))
	handle("POST", "/topic/empty", a.logged(a.topicEmpty))
	handle("POST", "/topic/pause", a.logged(a.topicPause))
	handle("POST", "/topic/unpause", a.logged(a.topicPause))
	handle("POST", "/channel/create", a.logged(a.channelCreate))
	handle("POST", "/channel/delete", a.logged(a.channelDelete))
	handle("POST", "/channel/empty", a.logged(a.channelEmpty))
	handle("POST", "/channel/pause", a.logged(a.channelPause))
	handle("POST", "/channel/unpause", a.logged(a.channelPause))
	handle("GET", "/config/{opt}", a.logged(a.config))
	handle("PUT", "/config/{opt}", a.logged(a.config))

	// pprof on our own mux (importing net/http/pprof also fills
	// http.DefaultServeMux, which nsqd never serves): NSQ's profiles plus
	// allocs, mutex and trace.
	handle("GET", "/debug/pprof/{$}", pprof.Index)
	for _, name := range []string{"heap", "goroutine", "block", "threadcreate", "allocs", "mutex"} {
		handle("GET", "/debug/pprof/"+name, pprof.Handler(name).ServeHTTP)
	}
	handle("GET", "/debug/pprof/cmdline", pprof.Cmdline)
	handle("GET", "/debug/pprof/symbol", pprof.Symbol)
	handle("POST", "/debug/pprof/symbol", pprof.Symbol)
	handle("GET", "/debug/pprof/profile", pprof.Profile)
	handle("GET", "/debug/pprof/trace", pprof.Trace)
	handle("PUT", "/debug/setblockrate", a.logged(a.setBlockRate))
	handle("POST", "/debug/freememory", a.logged(a.freeMemory))

	// A method-less pattern under each path catches the other methods:
	// ServeMux's own 405 is plain text, NSQ's is JSON.
	for path, ms := range methods {
		ms = append(ms, http.MethodOptions)
		slices.Sort(ms)
		a.allow[path] = strings.Join(slices.Compact(ms), ", ")
		a.mux.HandleFunc(path, a.otherMethod(path))
	}
	a.mux.HandleFunc("/", a.logged(a.notFound))
	return a
}

// ServeHTTP adds NSQ's X-NSQ-Content-Type to every response, enforces
// --tls-required and turns a panic into 500 INTERNAL_ERROR.
func (a *httpAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header()["X-Nsq-Content-Type"] = hdrNSQContentType
	if !a.overTLS && a.s.cfg.TLSRequired == TLSRequired {
		a.tlsRequired(w)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			a.log.Error("panic in HTTP handler", "err", p, "method", r.Method, "uri", r.URL.RequestURI(), "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
		}
	}()
	if a.s.auth != nil && !a.authorize(w, r) { // http_auth.go
		return
	}
	a.mux.ServeHTTP(w, r)
}

// tlsRequired is NSQ's answer on plain HTTP under --tls-required=true,
// byte for byte (note the spaces: NSQ formats it by hand).
func (a *httpAPI) tlsRequired(w http.ResponseWriter) {
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusForbidden)
	io.WriteString(w, `{"message": "TLS_REQUIRED", "https_port": `+strconv.Itoa(a.s.httpsPort())+`}`)
}

// writeJSON writes v as a 200 JSON response.
func writeJSON(w http.ResponseWriter, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(http.StatusOK)
	w.Write(b)
}

// writeError writes NSQ's error body, {"message":"<msg>"}, with code.
func writeError(w http.ResponseWriter, code int, msg string) {
	b, _ := json.Marshal(struct {
		Message string `json:"message"`
	}{msg})
	w.Header()["Content-Type"] = hdrJSON
	w.WriteHeader(code)
	w.Write(b)
}

// writeText writes a plain-text response. An empty 200 (NSQ's answer to
// the topic and channel actions) has no body and no Content-Type.
func writeText(w http.ResponseWriter, code int, b []byte) {
	if len(b) > 0 {
		w.Header()["Content-Type"] = hdrText
	}
	w.WriteHeader(code)
	w.Write(b)
}

// statusWriter records the status a handler sent, for the request log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (sw *statusWriter) WriteHeader(code int) {
	if sw.status == 0 {
		sw.status = code
	}
	sw.ResponseWriter.WriteHeader(code)
}

func (sw *statusWriter) Write(b []byte) (int, error) {
	if sw.status == 0 {
		sw.status = http.StatusOK
	}
	return sw.ResponseWriter.Write(b)
}

func (sw *statusWriter) Unwrap() http.ResponseWriter { return sw.ResponseWriter }

// logged logs each request as NSQ does: status, method, URI, remote
// address and time taken.
func (a *httpAPI) logged(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		h(sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		a.log.Info("http request", "status", sw.status, "method", r.Method, "uri", r.URL.RequestURI(), "remote_addr", r.RemoteAddr, "elapsed", time.Since(start))
	}
}

func (a *httpAPI) notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, "NOT_FOUND")
}

// otherMethod answers a request for path with a method it does not serve:
// OPTIONS lists the methods (NSQ's router answers it itself), anything else
// is 405 METHOD_NOT_ALLOWED.
func (a *httpAPI) otherMethod(path string) http.HandlerFunc {
	return a.logged(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", a.allow[path])
		if r.Method == http.MethodOptions {
			w.WriteHeader(http.StatusOK)
			return
		}
		writeError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	})
}

// query holds a request's query string, read by url.ParseQuery's rules
// (first value wins; a ';' or a bad %-escape anywhere is an error) but
// without building a map when nothing needs unescaping.
type query struct {
	raw  string
	vals url.Values // set when raw needed unescaping
}

func parseQuery(raw string) (query, error) {
	if strings.ContainsAny(raw, "%+;") {
		vals, err := url.ParseQuery(raw)
		return query{vals: vals}, err
	}
	return query{raw: raw}, nil
}

// get returns the first value of key and whether key is present.
func (q query) get(key string) (string, bool) {
	if q.vals != nil {
		if v, ok := q.vals[key]; ok {
			return v[0], true
		}
		return "", false
	}
	for rest := q.raw; rest != ""; {
		var part string
		part, rest, _ = strings.Cut(rest, "&")
		k, v, _ := strings.Cut(part, "=")
		if k == key && part != "" {
			return v, true
		}
	}
	return "", false
}

// boolParams are the spellings NSQ accepts for a boolean parameter.
func boolParam(s string) (v, ok bool) {
	switch s {
	case "true", "1":
		return true, true
	case "false", "0":
		return false, true
	}
	return false, false
}

// requestQuery parses the query string, answering 400 INVALID_REQUEST when
// it cannot be parsed.
func (a *httpAPI) requestQuery(w http.ResponseWriter, r *http.Request) (query, bool) {
	q, err := parseQuery(r.URL.RawQuery)
	if err != nil {
		a.log.Error("failed to parse request params", "uri", r.URL.RequestURI(), "err", err)
		writeError(w, http.StatusBadRequest, "INVALID_REQUEST")
		return q, false
	}
	return q, true
}

// validTopic reads the topic parameter of /pub, /mpub and /topic/create,
// checking the name.
func (a *httpAPI) validTopic(w http.ResponseWriter, q query) (string, bool) {
	name, ok := q.get("topic")
	if !ok {
		writeError(w, http.StatusBadRequest, "MISSING_ARG_TOPIC")
		return "", false
	}
	if !wire.ValidName(name) {
		writeError(w, http.StatusBadRequest, "INVALID_TOPIC")
		return "", false
	}
	return name, true
}

// topic returns the named topic, creating it: an existing topic is found
// under the read lock, so publishing to it does not serialise on the
// server's write lock.
// topicFor reads and checks the topic parameter and returns the topic,
// creating it; it answers the error itself (503 EXITING during shutdown).
func (a *httpAPI) topicFor(w http.ResponseWriter, r *http.Request) (query, *Topic, bool) {
	q, ok := a.requestQuery(w, r)
	if !ok {
		return q, nil, false
	}
	name, ok := a.validTopic(w, q)
	if !ok {
		return q, nil, false
	}
	t, err := a.s.Topic(name)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "EXITING")
		return q, nil, false
	}
	return q, t, true
}

// existingTopicChannel reads and checks topic and channel parameters and
// finds the topic (the channel/* actions).
func (a *httpAPI) existingTopicChannel(w http.ResponseWriter, r *http.Request) (*Topic, string, bool) {
	q, ok := a.requestQuery(w, r)
	if !ok {
		return nil, "", false
	}
	topic, ok := q.get("topic")
	if !ok {
		writeError(w, http.StatusBadRequest, "MISSING_ARG_TOPIC")
		return nil, "", false
	}
	if !wire.ValidName(topic) {
		writeError(w, http.StatusBadRequest, "INVALID_ARG_TOPIC")
		return nil, "", false
	}
	channel, ok := q.get("channel")
	if !ok {
		writeError(w, http.StatusBadRequest, "MISSING_ARG_CHANNEL")
		return nil, "", false
	}
	if !wire.ValidName(channel) {
		writeError(w, http.StatusBadRequest, "INVALID_ARG_CHANNEL")
		return nil, "", false
	}
	t := a.s.existingTopic(topic)
	if t == nil {
		writeError(w, http.StatusNotFound, "TOPIC_NOT_FOUND")
		return nil, "", false
	}
	return t, channel, true
}

// readBody reads r into buf's spare capacity, growing it, until EOF or
// limit bytes. A caller that gets limit bytes knows the body was longer
// than limit-1.
func readBody(r io.Reader, buf []byte, limit int64) ([]byte, error) {
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			grow := max(cap(buf), 512)
			grow = int(min(int64(grow), limit-int64(len(buf))))
			buf = slices.Grow(buf, grow)
		}
		end := int(min(int64(cap(buf)), limit))
		n, err := r.Read(buf[len(buf):end])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
	return buf, nil
}

// body reads the request body, at most limit bytes, into a pooled buffer;
// the caller hands it back with a.release(p, body) once done with body.
func (a *httpAPI) body(r *http.Request, limit int64) (*[]byte, []byte, error) {
	p, _ := a.bufs.Get().(*[]byte)
	if p == nil {
		p = new([]byte)
	}
	buf := (*p)[:0]
	if n := r.ContentLength; n > 0 && int64(cap(buf)) < min(n+1, limit) {
		buf = slices.Grow(buf, int(min(n+1, limit)))
	}
	buf, err := readBody(r.Body, buf, limit)
	return p, buf, err
}

// release returns a body buffer to the pool. Topic.Publish and friends copy
// what they keep, so the buffer is free once they return.
func (a *httpAPI) release(p *[]byte, buf []byte) {
	if cap(buf) <= maxPooledBody {
		*p = buf[:0]
		a.bufs.Put(p)
	}
}

// ping is 200 "OK" while healthy, 500 "NOK - <reason>" after a storage
// failure.
func (a *httpAPI) ping(w http.ResponseWriter, r *http.Request) {
	health := a.s.Health()
	if health != "OK" {
		writeText(w, http.StatusInternalServerError, []byte(health))
		return
	}
	writeText(w, http.StatusOK, bodyOK)
}

// infoDoc is GET /info. Durations are nanoseconds, as NSQ marshals them.
type infoDoc struct {
	Version                string        `json:"version"`
	BroadcastAddress       string        `json:"broadcast_address"`
	Hostname               string        `json:"hostname"`
	HTTPPort               int           `json:"http_port"`
	TCPPort                int           `json:"tcp_port"`
	StartTime              int64         `json:"start_time"`
	MaxHeartbeatInterval   time.Duration `json:"max_heartbeat_interval"`
	MaxOutputBufferSize    int64         `json:"max_output_buffer_size"`
	MaxOutputBufferTimeout time.Duration `json:"max_output_buffer_timeout"`
	MaxDeflateLevel        int           `json:"max_deflate_level"`
	TopologyZone           string        `json:"topology_zone"`
	TopologyRegion         string        `json:"topology_region"`
}

func (a *httpAPI) info(w http.ResponseWriter, r *http.Request) {
	host, err := os.Hostname()
	if err != nil {
		writeError(w, http.StatusInternalServerError, err.Error())
		return
	}
	cfg := a.s.cfg
	httpPort := -1
	if a.s.httpLn != nil {
		httpPort = listenerPort(a.s.httpLn.Addr())
	}
	writeJSON(w, infoDoc{
		Version:                version.Compat,
		BroadcastAddress:       cfg.BroadcastAddress,
		Hostname:               host,
		HTTPPort:               httpPort,
		TCPPort:                listenerPort(a.s.tcpLn.Addr()),
		StartTime:              a.s.startTime.Unix(),
		MaxHeartbeatInterval:   cfg.MaxHeartbeatInterval,
		MaxOutputBufferSize:    cfg.MaxOutputBufferSize,
		MaxOutputBufferTimeout: cfg.MaxOutputBufferTimeout,
		MaxDeflateLevel:        cfg.MaxDeflateLevel,
		TopologyZone:           cfg.TopologyZone,
		TopologyRegion:         cfg.TopologyRegion,
	})
}

// pub publishes the body as one message. NSQ's order of checks: size by
// Content-Length, size and emptiness by reading, then the parameters.
func (a *httpAPI) pub(w http.ResponseWriter, r *http.Request) {
	maxSize := a.s.cfg.MaxMsgSize
	if r.ContentLength > maxSize {
		writeError(w, http.StatusRequestEntityTooLarge, "MSG_TOO_BIG")
		return
	}
	p, body, err := a.body(r, maxSize+1)
	defer a.release(p, body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
		return
	}
	if int64(len(body)) > maxSize {
		writeError(w, http.StatusRequestEntityTooLarge, "MSG_TOO_BIG")
		return
	}
	if len(body) == 0 {
		writeError(w, http.StatusBadRequest, "MSG_EMPTY")
		return
	}
	// NSQ creates the topic before it looks at defer.
	q, t, ok := a.topicFor(w, r)
	if !ok {
		return
	}
	var delay time.Duration
	if ds, ok := q.get("defer"); ok {
		ms, err := strconv.ParseInt(ds, 10, 64)
		delay = time.Duration(ms) * time.Millisecond
		if err != nil || delay < 0 || delay > a.s.cfg.MaxReqTimeout {
			writeError(w, http.StatusBadRequest, "INVALID_DEFER")
			return
		}
	}
	if err := t.Publish(body, delay); err != nil {
		writeError(w, http.StatusServiceUnavailable, "EXITING")
		return
	}
	writeText(w, http.StatusOK, bodyOK)
}

// mpub publishes several messages atomically: newline-separated text, or
// with binary=true NSQ's MPUB body ([count][size][data]…, no outer size).
func (a *httpAPI) mpub(w http.ResponseWriter, r *http.Request) {
	cfg := a.s.cfg
	if r.ContentLength > cfg.MaxBodySize {
		writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_BIG")
		return
	}
	q, t, ok := a.topicFor(w, r)
	if !ok {
		return
	}
	binaryMode := false
	if v, ok := q.get("binary"); ok {
		if binaryMode, ok = boolParam(v); !ok {
			binaryMode = true
			a.log.Warn("deprecated value used for /mpub binary param", "value", v)
		}
	}
	p, body, err := a.body(r, cfg.MaxBodySize+1)
	defer a.release(p, body)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
		return
	}
	if binaryMode {
		// NSQ reads a binary body's messages off the stream, so a body
		// longer than max-body-size fails only by its Content-Length;
		// nsqx also bounds a chunked one.
		if int64(len(body)) > cfg.MaxBodySize {
			writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_BIG")
			return
		}
		body, e := a.checkMPUB(body)
		if e != nil {
			writeError(w, http.StatusRequestEntityTooLarge, strings.TrimPrefix(e.Code, "E_"))
			return
		}
		err = t.PublishMPUB(body)
	} else {
		var bodies [][]byte
		total := 0
		for rest := body; len(rest) > 0; {
			line := rest
			if i := slices.Index(rest, '\n'); i >= 0 {
				line, rest = rest[:i+1], rest[i+1:]
			} else {
				rest = nil
			}
			total += len(line)
			if int64(total) > cfg.MaxBodySize {
				writeError(w, http.StatusRequestEntityTooLarge, "BODY_TOO_BIG")
				return
			}
			if line[len(line)-1] == '\n' {
				line = line[:len(line)-1]
			}
			if len(line) == 0 {
				continue
			}
			if int64(len(line)) > cfg.MaxMsgSize {
				writeError(w, http.StatusRequestEntityTooLarge, "MSG_TOO_BIG")
				return
			}
			bodies = append(bodies, line)
		}
		err = t.PublishBodies(bodies)
	}
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "EXITING")
		return
	}
	writeText(w, http.StatusOK, bodyOK)
}

// checkMPUB validates a binary /mpub body with wire.SplitMPUB and returns
// the part holding the declared messages. NSQ reads the messages off the
// stream, so it ignores bytes after the last one and reports a body that
// ends early as a bad message, not a bad body; nsqx answers the same.
func (a *httpAPI) checkMPUB(body []byte) ([]byte, *wire.Error) {
	cfg := a.s.cfg
	maxCount := int((cfg.MaxBodySize - 4) / 5)
	countOK := false
	if len(body) >= 4 {
		n := int32(binary.BigEndian.Uint32(body))
		countOK = n > 0 && int(n) <= maxCount
		if countOK {
			// Trim to the end of the declared messages, if they fit.
			off := 4
			for i := int32(0); i < n && off+4 <= len(body); i++ {
				size := int32(binary.BigEndian.Uint32(body[off:]))
				if size <= 0 || int64(size) > int64(len(body)-off-4) {
					break
				}
				off += 4 + int(size)
				if i == n-1 {
					body = body[:off]
				}
			}
		}
	}
	e := wire.SplitMPUB(body, maxCount, int(cfg.MaxMsgSize), nil)
	if e != nil && e.Code == wire.ErrBadBody && countOK {
		// The count was fine, so the body ended inside a message.
		e = wire.Fatal(wire.ErrBadMessage, e.Desc)
	}
	return body, e
}

// stats is GET /stats: NSQ's text report by default, JSON with
// format=json.
func (a *httpAPI) stats(w http.ResponseWriter, r *http.Request) {
	q, ok := a.requestQuery(w, r)
	if !ok {
		return
	}
	format, _ := q.get("format")
	f := StatsFilter{IncludeClients: true, IncludeMem: true}
	f.Topic, _ = q.get("topic")
	f.Channel, _ = q.get("channel")
	// Any value but NSQ's four spellings leaves the default, true.
	inclClients, _ := q.get("include_clients")
	if v, ok := boolParam(inclClients); ok {
		f.IncludeClients = v
	}
	inclMem, _ := q.get("include_mem")
	if v, ok := boolParam(inclMem); ok {
		f.IncludeMem = v
	}
	st := a.s.Stats(f)
	if format != "json" {
		writeText(w, http.StatusOK, a.s.statsText(st, time.Now()))
		return
	}
	writeJSON(w, st)
}

func (a *httpAPI) topicCreate(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := a.topicFor(w, r); !ok {
		return
	}
	writeText(w, http.StatusOK, nil)
}

// topicDelete does not check the name, as in NSQ: an invalid one is simply
// not found.
func (a *httpAPI) topicDelete(w http.ResponseWriter, r *http.Request) {
	q, ok := a.requestQuery(w, r)
	if !ok {
		return
	}
	name, ok := q.get("topic")
	if !ok {
		writeError(w, http.StatusBadRequest, "MISSING_ARG_TOPIC")
		return
	}
	if !a.s.DeleteTopic(name) {
		writeError(w, http.StatusNotFound, "TOPIC_NOT_FOUND")
		return
	}
	writeText(w, http.StatusOK, nil)
}

func (a *httpAPI) topicEmpty(w http.ResponseWriter, r *http.Request) {
	q, ok := a.requestQuery(w, r)
	if !ok {
		return
	}
	name, ok := a.validTopic(w, q)
	if !ok {
		return
	}
	t := a.s.existingTopic(name)
	if t == nil {
		writeError(w, http.StatusNotFound, "TOPIC_NOT_FOUND")
		return
	}
	t.Empty()
	writeText(w, http.StatusOK, nil)
}

// topicPause serves /topic/pause and /topic/unpause. Like NSQ it does not
// check the name. The topic persists its metadata.
func (a *httpAPI) topicPause(w http.ResponseWriter, r *http.Request) {
	q, ok := a.requestQuery(w, r)
	if !ok {
		return
	}
	name, ok := q.get("topic")
	if !ok {
		writeError(w, http.StatusBadRequest, "MISSING_ARG_TOPIC")
		return
	}
	t := a.s.existingTopic(name)
	if t == nil {
		writeError(w, http.StatusNotFound, "TOPIC_NOT_FOUND")
		return
	}
	if strings.HasSuffix(r.URL.Path, "/unpause") {
		t.Unpause()
	} else {
		t.Pause()
	}
	writeText(w, http.StatusOK, nil)
}

func (a *httpAPI) channelCreate(w http.ResponseWriter, r *http.Request) {
	t, name, ok := a.existingTopicChannel(w, r)
	if !ok {
		return
	}
	if _, err := t.Channel(name); err != nil {
		// The topic was deleted meanwhile.
		writeError(w, http.StatusNotFound, "TOPIC_NOT_FOUND")
		return
	}
	writeText(w, http.StatusOK, nil)
}

func (a *httpAPI) channelDelete(w http.ResponseWriter, r *http.Request) {
	t, name, ok := a.existingTopicChannel(w, r)
	if !ok {
		return
	}
	if !t.DeleteChannel(name) {
		writeError(w, http.StatusNotFound, "CHANNEL_NOT_FOUND")
		return
	}
	writeText(w, http.StatusOK, nil)
}

func (a *httpAPI) channelEmpty(w http.ResponseWriter, r *http.Request) {
	t, name, ok := a.existingTopicChannel(w, r)
	if !ok {
		return
	}
	c := t.existingChannel(name)
	if c == nil {
		writeError(w, http.StatusNotFound, "CHANNEL_NOT_FOUND")
		return
	}
	c.Empty()
	writeText(w, http.StatusOK, nil)
}

// channelPause serves /channel/pause and /channel/unpause.
func (a *httpAPI) channelPause(w http.ResponseWriter, r *http.Request) {
	t, name, ok := a.existingTopicChannel(w, r)
	if !ok {
		return
	}
	c := t.existingChannel(name)
	if c == nil {
		writeError(w, http.StatusNotFound, "CHANNEL_NOT_FOUND")
		return
	}
	if strings.HasSuffix(r.URL.Path, "/unpause") {
		c.Unpause()
	} else {
		c.Pause()
	}
	writeText(w, http.StatusOK, nil)
}

// config is GET and PUT /config/{opt}. GET reads any option by its config
// file name; PUT changes nsqlookupd_tcp_addresses (a JSON array) or
// log_level (a bare level name), then answers as GET.
func (a *httpAPI) config(w http.ResponseWriter, r *http.Request) {
	opt := r.PathValue("opt")
	if r.Method == http.MethodPut {
		limit := a.s.cfg.MaxMsgSize + 1
		p, body, err := a.body(r, limit)
		defer a.release(p, body)
		if err != nil {
			writeError(w, http.StatusInternalServerError, "INTERNAL_ERROR")
			return
		}
		if int64(len(body)) == limit || len(body) == 0 {
			writeError(w, http.StatusRequestEntityTooLarge, "INVALID_VALUE")
			return
		}
		switch opt {
		case "nsqlookupd_tcp_addresses":
			var addrs []string
			if err := json.Unmarshal(body, &addrs); err != nil {
				writeError(w, http.StatusBadRequest, "INVALID_VALUE")
				return
			}
			a.s.SetLookupdAddrs(addrs)
		case "log_level":
			level, ok := parseLogLevel(string(body))
			if !ok {
				writeError(w, http.StatusBadRequest, "INVALID_VALUE")
				return
			}
			a.s.setLogLevel(level)
		default:
			writeError(w, http.StatusBadRequest, "INVALID_OPTION")
			return
		}
	}
	v, ok := a.s.configValue(opt)
	if !ok {
		writeError(w, http.StatusBadRequest, "INVALID_OPTION")
		return
	}
	writeJSON(w, v)
}

// setBlockRate is PUT /debug/setblockrate?rate=N. Its error is plain text,
// as in NSQ.
func (a *httpAPI) setBlockRate(w http.ResponseWriter, r *http.Request) {
	rate, err := strconv.Atoi(r.FormValue("rate"))
	if err != nil {
		writeText(w, http.StatusBadRequest, []byte("invalid block rate : "+err.Error()))
		return
	}
	runtime.SetBlockProfileRate(rate)
	writeText(w, http.StatusOK, nil)
}

func (a *httpAPI) freeMemory(w http.ResponseWriter, r *http.Request) {
	debug.FreeOSMemory()
	writeText(w, http.StatusOK, nil)
}
