package nsqd

import (
	"crypto/sha256"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// HTTP auth (nsqx; NSQ leaves its HTTP API open when auth is on). With
// --auth-http-address set, every HTTP(S) request but the read-only GET
// /ping, /info, /stats and /metrics carries the client's secret (/stats and
// /metrics too with --auth-http-protect-stats: they stay open by default
// because NSQ's nsqadmin, nsq_stat, Telegraf, KEDA and Prometheus poll them
// without credentials), as "Authorization: Bearer <secret>"
// or a "secret" query parameter, and is checked against the same auth
// servers and rules as the TCP protocol:
//
//   - /pub, /mpub and /topic/* need "publish" on the topic (NSQ's PUB rule,
//     channel "");
//   - /channel/* need "subscribe" on the topic and channel (NSQ's SUB rule);
//   - everything else (/stats, /config, /debug) needs a secret the auth
//     server accepts with at least one authorization: NSQ's permissions
//     know no administrator. With --auth-admin-identity, what changes the
//     server (PUT /config, /debug) needs one of those identities instead.
//
// A request whose topic or channel parameter is missing is checked for the
// secret only; the handler then refuses it without changing anything.
// Answers: 401 AUTH_REQUIRED (no secret), 401 AUTH_FAILED (the auth server
// refused, failed or could not be reached), 403 UNAUTHORIZED (no
// authorization for this). Accepted answers are cached for their TTL per
// secret, client IP and TLS identity.

// maxHTTPAuthCache bounds the cached answers; past it the cache starts over.
const maxHTTPAuthCache = 4096

// httpAuthRule is what a path needs.
type httpAuthRule int

const (
	authOpen      httpAuthRule = iota // no secret
	authAny                           // any accepted secret
	authPublish                       // publish on ?topic=
	authSubscribe                     // subscribe on ?topic= and ?channel=
	authAdmin                         // an admin identity, when any is configured
)

func httpAuthRuleFor(method, path string, protectStats bool) httpAuthRule {
	switch {
	case strings.HasPrefix(path, "/config/") && method != http.MethodGet, strings.HasPrefix(path, "/debug/"):
		return authAdmin
	case (path == "/ping" || path == "/info") && method == http.MethodGet:
		return authOpen
	case (path == "/stats" || path == "/metrics") && method == http.MethodGet && !protectStats:
		return authOpen
	case path == "/pub" || path == "/mpub" || strings.HasPrefix(path, "/topic/"):
		return authPublish
	case strings.HasPrefix(path, "/channel/"):
		return authSubscribe
	}
	return authAny
}

// httpAuthCache holds accepted auth answers for HTTP requests, keyed by a
// hash of what was sent to the auth server.
type httpAuthCache struct {
	mu sync.Mutex
	m  map[[sha256.Size]byte]*authState
}

func (c *httpAuthCache) get(k [sha256.Size]byte, now time.Time) *authState {
	c.mu.Lock()
	defer c.mu.Unlock()
	st := c.m[k]
	if st != nil && st.expired(now) {
		delete(c.m, k)
		return nil
	}
	return st
}

func (c *httpAuthCache) put(k [sha256.Size]byte, st *authState, now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[[sha256.Size]byte]*authState{}
	}
	if len(c.m) >= maxHTTPAuthCache {
		for k, st := range c.m {
			if st.expired(now) {
				delete(c.m, k)
			}
		}
		if len(c.m) >= maxHTTPAuthCache {
			clear(c.m)
		}
	}
	c.m[k] = st
}

// authorize checks a request when auth is on and reports whether it may go
// on; if not, it has answered. It removes the secret from the query, so
// that it is not logged.
func (a *httpAPI) authorize(w http.ResponseWriter, r *http.Request) bool {
	rule := httpAuthRuleFor(r.Method, r.URL.Path, a.s.cfg.AuthHTTPProtectStats)
	if rule == authOpen {
		return true
	}
	secret, ok := requestSecret(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="nsqd"`)
		a.refuse(w, r, http.StatusUnauthorized, "AUTH_REQUIRED")
		return false
	}
	q := authQuery{secret: secret}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		q.remoteIP = host
	}
	if r.TLS != nil {
		q.tls = true
		if len(r.TLS.PeerCertificates) > 0 {
			q.commonName = r.TLS.PeerCertificates[0].Subject.CommonName
		}
	}
	st, err := a.authState(r, q)
	if err != nil {
		a.log.Warn("HTTP auth failed", "remote_addr", r.RemoteAddr, "err", err)
		w.Header().Set("WWW-Authenticate", `Bearer realm="nsqd", error="invalid_token"`)
		a.refuse(w, r, http.StatusUnauthorized, "AUTH_FAILED")
		return false
	}
	allowed := len(st.rules) > 0
	if rule == authAdmin {
		if admins := a.s.cfg.AuthAdminIdentities; len(admins) > 0 {
			allowed = slices.Contains(admins, st.identity)
		}
	} else if allowed && rule != authAny {
		// The handlers read the parameters with the same parser.
		params, err := parseQuery(r.URL.RawQuery)
		topic, hasTopic := params.get("topic")
		channel, hasChannel := params.get("channel")
		switch {
		case err != nil || !hasTopic:
		case rule == authPublish:
			allowed = st.allowed(topic, "")
		case hasChannel && channel != "":
			allowed = st.allowed(topic, channel)
		}
	}
	if !allowed {
		a.refuse(w, r, http.StatusForbidden, "UNAUTHORIZED")
		return false
	}
	return true
}

// authState returns the cached answer for q or asks the auth servers.
func (a *httpAPI) authState(r *http.Request, q authQuery) (*authState, error) {
	now := time.Now()
	h := sha256.New()
	for _, s := range []string{q.secret, q.remoteIP, q.commonName} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	if q.tls {
		h.Write([]byte{1})
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	if st := a.s.auth.cache.get(k, now); st != nil {
		return st, nil
	}
	st, err := a.s.auth.query(r.Context(), q)
	if err != nil {
		return nil, err
	}
	a.s.auth.cache.put(k, st, now)
	return st, nil
}

// refuse answers a request that auth stopped, and logs it without its query.
func (a *httpAPI) refuse(w http.ResponseWriter, r *http.Request, code int, msg string) {
	writeError(w, code, msg)
	a.log.Info("http request", "status", code, "method", r.Method, "uri", r.URL.Path, "remote_addr", r.RemoteAddr)
}

// requestSecret reads the secret from "Authorization: Bearer" or, failing
// that, the "secret" query parameter, which it then removes from the URL.
func requestSecret(r *http.Request) (string, bool) {
	secret := ""
	if h := r.Header.Get("Authorization"); h != "" {
		if scheme, tok, ok := strings.Cut(h, " "); ok && strings.EqualFold(scheme, "Bearer") {
			secret = strings.TrimSpace(tok)
		}
	}
	if secret == "" {
		if q, err := parseQuery(r.URL.RawQuery); err == nil {
			secret, _ = q.get("secret")
		}
	}
	if strings.Contains(r.URL.RawQuery, "secret") {
		r.URL.RawQuery = withoutSecret(r.URL.RawQuery)
	}
	return secret, secret != ""
}

// withoutSecret drops every secret=… pair from a raw query, keeping the
// other pairs byte for byte.
func withoutSecret(raw string) string {
	var kept []string
	for _, part := range strings.Split(raw, "&") {
		k, _, _ := strings.Cut(part, "=")
		if uk, err := url.QueryUnescape(k); k == "secret" || err == nil && uk == "secret" {
			continue
		}
		kept = append(kept, part)
	}
	return strings.Join(kept, "&")
}
