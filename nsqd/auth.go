package nsqd

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// Authorization through external auth servers (--auth-http-address), on
// NSQ's protocol: nsqd sends the client's secret, remote IP, TLS state and
// certificate common name; the server answers with an identity, a TTL and
// a list of authorizations (a topic regex, channel regexes, permissions
// "publish" and/or "subscribe"). The answer is cached for the TTL and
// fetched again when it has expired.
//
// Auth fails closed: an auth server that is down, slow, answers an error
// status or anything but a well-formed answer with a positive TTL lets
// nobody in.

// maxAuthResponse bounds what nsqd reads from an auth server.
const maxAuthResponse = 1 << 20

// authServers queries the configured auth servers, trying each in turn
// from a random one, like NSQ.
type authServers struct {
	addrs  []string // endpoints: full URLs
	post   bool     // --auth-http-request-method=post
	client *http.Client
	log    *slog.Logger
	cache  httpAuthCache // answers for HTTP requests (http_auth.go)
}

// newAuthServers returns nil when no auth server is configured.
func newAuthServers(cfg *Config, clientTLS *tls.Config, log *slog.Logger) (*authServers, error) {
	var addrs []string
	for _, a := range cfg.AuthHTTPAddresses {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		// NSQ: a full URL is used as is, host:port means http://host:port/auth.
		endpoint := a
		if !strings.Contains(a, "://") {
			endpoint = "http://" + a + "/auth"
		}
		u, err := url.Parse(endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("--auth-http-address %q: want host:port or an http(s) URL", a)
		}
		addrs = append(addrs, endpoint)
	}
	if len(addrs) == 0 {
		return nil, nil
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: cfg.HTTPClientConnectTimeout, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     clientTLS,
		TLSHandshakeTimeout: cfg.HTTPClientConnectTimeout,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}
	return &authServers{
		addrs:  addrs,
		post:   cfg.AuthHTTPRequestMethod == "post",
		client: &http.Client{Transport: tr, Timeout: cfg.HTTPClientRequestTimeout},
		log:    log,
	}, nil
}

// close drops idle connections to the auth servers (at shutdown).
func (a *authServers) close() { a.client.CloseIdleConnections() }

// authQuery is what nsqd tells the auth server about a client.
type authQuery struct {
	secret     string
	remoteIP   string
	tls        bool
	commonName string
}

// authState is one auth server answer, checked and compiled.
type authState struct {
	identity    string
	identityURL string
	rules       []authRule
	expires     time.Time
}

type authRule struct {
	topic     *regexp.Regexp
	channels  []*regexp.Regexp
	publish   bool
	subscribe bool
}

// authResponse is an auth server's JSON answer.
type authResponse struct {
	TTL            int    `json:"ttl"`
	Identity       string `json:"identity"`
	IdentityURL    string `json:"identity_url"`
	Authorizations []struct {
		Topic       string   `json:"topic"`
		Channels    []string `json:"channels"`
		Permissions []string `json:"permissions"`
	} `json:"authorizations"`
}

func (s *authState) expired(now time.Time) bool { return !now.Before(s.expires) }

// allowed is NSQ's rule: publishing (channel "") needs "publish",
// subscribing "subscribe"; the topic regex must match the topic and a
// channel regex the channel, even when publishing (so a publish rule needs
// a channel regex that matches "", such as ".*"). Regexes are unanchored.
func (s *authState) allowed(topic, channel string) bool {
	for _, r := range s.rules {
		if channel == "" && !r.publish || channel != "" && !r.subscribe {
			continue
		}
		if !r.topic.MatchString(topic) {
			continue
		}
		for _, ch := range r.channels {
			if ch.MatchString(channel) {
				return true
			}
		}
	}
	return false
}

// query asks the auth servers, starting at a random one, until one gives
// a valid answer. The error names every server that failed; it is for the
// log, never for the client.
func (a *authServers) query(ctx context.Context, q authQuery) (*authState, error) {
	var errs []error
	start := rand.IntN(len(a.addrs))
	for i := range a.addrs {
		endpoint := a.addrs[(start+i)%len(a.addrs)]
		st, err := a.queryOne(ctx, endpoint, q)
		if err == nil {
			return st, nil
		}
		errs = append(errs, fmt.Errorf("auth server %s: %w", endpoint, err))
	}
	return nil, errors.Join(errs...)
}

func (a *authServers) queryOne(ctx context.Context, endpoint string, q authQuery) (*authState, error) {
	v := url.Values{}
	v.Set("remote_ip", q.remoteIP)
	v.Set("tls", strconv.FormatBool(q.tls))
	v.Set("secret", q.secret)
	v.Set("common_name", q.commonName)
	body, status, err := a.do(ctx, endpoint, v)
	if err == nil && status == http.StatusForbidden {
		// NSQ's HTTP client follows an nsqd-style 403 TLS_REQUIRED to
		// the HTTPS port it names.
		if https, ok := httpsRetryURL(endpoint, body); ok {
			body, status, err = a.do(ctx, https, v)
		}
	}
	if err != nil {
		return nil, err
	}
	if status != http.StatusOK {
		return nil, fmt.Errorf("status %d", status)
	}
	var resp authResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return nil, fmt.Errorf("bad answer: %w", err)
	}
	return resp.compile(time.Now())
}

// do sends one query and returns the answer's body and status.
func (a *authServers) do(ctx context.Context, endpoint string, v url.Values) ([]byte, int, error) {
	var req *http.Request
	var err error
	if a.post {
		// NSQ 1.3 posts the url.Values as JSON: every value an array.
		js, _ := json.Marshal(v)
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(js))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
	} else {
		sep := "?"
		if strings.Contains(endpoint, "?") {
			sep = "&"
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, endpoint+sep+v.Encode(), nil)
	}
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Accept", "application/vnd.nsq; version=1.0")
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, 0, redactSecret(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxAuthResponse+1))
	if err != nil {
		return nil, 0, redactSecret(err)
	}
	if len(body) > maxAuthResponse {
		return nil, 0, fmt.Errorf("answer longer than %d bytes", maxAuthResponse)
	}
	return body, resp.StatusCode, nil
}

// redactSecret keeps the secret, which is in a GET query's URL, out of
// logged errors.
func redactSecret(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// httpsRetryURL reads a 403 {"message":"TLS_REQUIRED","https_port":N}
// answer to an http:// endpoint and returns the https:// one.
func httpsRetryURL(endpoint string, body []byte) (string, bool) {
	var m struct {
		Message   string `json:"message"`
		HTTPSPort int    `json:"https_port"`
	}
	if json.Unmarshal(body, &m) != nil || m.Message != "TLS_REQUIRED" || m.HTTPSPort <= 0 {
		return "", false
	}
	u, err := url.Parse(endpoint)
	if err != nil || u.Scheme != "http" {
		return "", false
	}
	u.Scheme = "https"
	u.Host = net.JoinHostPort(u.Hostname(), strconv.Itoa(m.HTTPSPort))
	return u.String(), true
}

// compile checks an answer as NSQ does (a positive TTL, known permissions,
// valid regexes) and compiles its regexes once.
func (r *authResponse) compile(now time.Time) (*authState, error) {
	if r.TTL <= 0 {
		return nil, fmt.Errorf("invalid TTL %d (must be >0)", r.TTL)
	}
	st := &authState{
		identity:    r.Identity,
		identityURL: r.IdentityURL,
		expires:     now.Add(time.Duration(r.TTL) * time.Second),
	}
	for _, a := range r.Authorizations {
		var rule authRule
		for _, p := range a.Permissions {
			switch p {
			case "publish":
				rule.publish = true
			case "subscribe":
				rule.subscribe = true
			default:
				return nil, fmt.Errorf("unknown permission %q", p)
			}
		}
		var err error
		if rule.topic, err = regexp.Compile(a.Topic); err != nil {
			return nil, fmt.Errorf("topic %q: %w", a.Topic, err)
		}
		for _, ch := range a.Channels {
			re, err := regexp.Compile(ch)
			if err != nil {
				return nil, fmt.Errorf("channel %q: %w", ch, err)
			}
			rule.channels = append(rule.channels, re)
		}
		st.rules = append(st.rules, rule)
	}
	return st, nil
}

// connAuth is a connection's AUTH state. The read loop writes it under
// conn.imu (read by /stats) and reads it without.
type connAuth struct {
	authSecret string
	authed     *authState
}

// authQuery describes the client to the auth server: its IP (empty on a
// unix socket, as in NSQ), TLS state and certificate name.
func (c *conn) authQuery(secret string) authQuery {
	q := authQuery{secret: secret, tls: c.isTLS.Load(), commonName: c.tlsCommonName()}
	if addr, ok := c.nc.RemoteAddr().(*net.TCPAddr); ok {
		q.remoteIP = addr.IP.String()
	}
	return q
}

// authenticate runs AUTH once its body (the secret) has been read.
func (c *conn) authenticate(secret string) ([]byte, *wire.Error) {
	if c.authed != nil && len(c.authed.rules) > 0 {
		return nil, wire.Fatal(wire.ErrInvalid, "AUTH already set")
	}
	if c.srv.auth == nil {
		return nil, wire.Fatal(wire.ErrAuthDisabled, "AUTH disabled")
	}
	st, err := c.srv.auth.query(c.srv.runContext(), c.authQuery(secret))
	if err != nil {
		// The detail is for the log, not for an untrusted client.
		c.log.Warn("AUTH failed", "err", err)
		return nil, wire.Fatal(wire.ErrAuthFailed, "AUTH failed")
	}
	c.imu.Lock()
	c.authSecret, c.authed = secret, st
	c.imu.Unlock()
	if len(st.rules) == 0 {
		return nil, wire.Fatal(wire.ErrUnauthorized, "AUTH no authorizations found")
	}
	reply, err := json.Marshal(struct {
		Identity        string `json:"identity"`
		IdentityURL     string `json:"identity_url"`
		PermissionCount int    `json:"permission_count"`
	}{st.identity, st.identityURL, len(st.rules)})
	if err != nil {
		return nil, wire.Fatal(wire.ErrAuthError, "AUTH error "+err.Error())
	}
	return reply, nil
}

// checkAuth is NSQ's CheckAuth for PUB, MPUB, DPUB (channel "") and SUB:
// nothing without an auth server; otherwise the client must have
// authorised, its answer is fetched again once the TTL has passed, and it
// must allow the topic and channel.
func (c *conn) checkAuth(cmd, topic, channel string) *wire.Error {
	if c.srv.auth == nil {
		return nil
	}
	return c.checkAuthSlow(cmd, topic, channel)
}

func (c *conn) checkAuthSlow(cmd, topic, channel string) *wire.Error {
	st := c.authed
	if st == nil || len(st.rules) == 0 {
		return wire.Fatal(wire.ErrAuthFirst, "AUTH required before "+cmd)
	}
	if st.expired(time.Now()) {
		fresh, err := c.srv.auth.query(c.srv.runContext(), c.authQuery(c.authSecret))
		if err != nil {
			c.log.Warn("AUTH failed", "err", err)
			return wire.Fatal(wire.ErrAuthFailed, "AUTH failed")
		}
		c.imu.Lock()
		c.authed = fresh
		c.imu.Unlock()
		st = fresh
	}
	if !st.allowed(topic, channel) {
		return wire.Fatal(wire.ErrUnauthorized, fmt.Sprintf("AUTH failed for %s on %q %q", cmd, topic, channel))
	}
	return nil
}

// runContext is Run's context (cancelled at shutdown), for outbound
// requests made on a client's behalf.
func (s *Server) runContext() context.Context {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.ctx
}
