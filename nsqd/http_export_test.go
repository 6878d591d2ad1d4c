package nsqd

import "net/http"

// Hooks for the external tests in http_test.go.

// HTTPHandlerWith returns the HTTP API handler with one extra route, so a
// test can put a misbehaving handler behind the real middleware.
func (s *Server) HTTPHandlerWith(pattern string, h http.HandlerFunc) http.Handler {
	a := newHTTPAPI(s, false)
	a.mux.HandleFunc(pattern, h)
	return a
}

// SetHealth sets what Health reports, as a failed disk write would.
func (s *Server) SetHealth(h string) { s.health.Store(&h) }
