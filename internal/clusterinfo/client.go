package clusterinfo

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// maxResponse bounds a response body read from a node; a /stats of a large
// nsqd with clients is a few MB at most.
const maxResponse = 64 << 20

// Config configures a Client.
type Config struct {
	// ConnectTimeout bounds dialing a node (--http-client-connect-timeout).
	ConnectTimeout time.Duration
	// RequestTimeout bounds a whole request, body included
	// (--http-client-request-timeout).
	RequestTimeout time.Duration
	// TLS is used for https endpoints, including the retry over HTTPS an
	// nsqd asks for with TLS_REQUIRED. nil means the system defaults.
	TLS *tls.Config
	// Logger receives debug lines for each request; nil discards them.
	Logger *slog.Logger
	// AuthSecret, when set, is sent as "Authorization: Bearer <secret>" on
	// every request, for nsqds whose HTTP API requires auth (nsqx's
	// --auth-http-protect-stats).
	AuthSecret string
	// Observe, when not nil, is called after each request to a node with
	// the node's kind (KindNSQD or KindLookupd), its address as the
	// caller named it, the path asked (no query), how long the request
	// took (a retry over HTTPS and decoding the answer included) and its
	// error: nil for a 2xx answer, and for a lookupd's 404 to /lookup,
	// which only means no producers. PostJSON and GetJSON, which go to
	// other servers, are not reported. It is called on the request's
	// goroutine, concurrently with other requests, so it must be safe
	// for that and quick.
	Observe func(kind, addr, path string, d time.Duration, err error)
}

// Node kinds, as Config.Observe reports them.
const (
	KindNSQD    = "nsqd"
	KindLookupd = "nsqlookupd"
)

// Client queries and changes the nodes of one cluster over HTTP.
type Client struct {
	hc      *http.Client
	log     *slog.Logger
	secret  string
	observe func(kind, addr, path string, d time.Duration, err error) // nil: not observed
}

// New returns a Client. Zero timeouts mean NSQ's defaults (2s to connect,
// 5s per request).
func New(cfg Config) *Client {
	connect := cfg.ConnectTimeout
	if connect <= 0 {
		connect = 2 * time.Second
	}
	request := cfg.RequestTimeout
	if request <= 0 {
		request = 5 * time.Second
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       cfg.TLS,
		TLSHandshakeTimeout:   connect,
		ResponseHeaderTimeout: request,
		MaxIdleConnsPerHost:   4,
		IdleConnTimeout:       90 * time.Second,
	}
	return &Client{
		hc:      &http.Client{Transport: tr, Timeout: request},
		log:     logger,
		secret:  cfg.AuthSecret,
		observe: cfg.Observe,
	}
}

// CloseIdleConnections closes the keep-alive connections to the nodes.
func (c *Client) CloseIdleConnections() { c.hc.CloseIdleConnections() }

// PartialError reports that some of the nodes a call asked failed; the
// result returned with it holds what the others answered.
type PartialError struct {
	Errs []error
}

func (e *PartialError) Error() string {
	msgs := make([]string, len(e.Errs))
	for i, err := range e.Errs {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

// Unwrap returns the individual failures.
func (e *PartialError) Unwrap() []error { return e.Errs }

// StatusError is a node's answer other than 200.
type StatusError struct {
	Method, URL string
	Status      int
	Body        string // trimmed, at most 200 bytes
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("%s %s: got response %d %s %q", e.Method, e.URL, e.Status, http.StatusText(e.Status), e.Body)
}

// summarize turns the failures of a call that asked n nodes of kind into
// its error: nil, a *PartialError, or a plain error when all n failed.
func summarize(kind string, n int, errs []error) error {
	errs = compact(errs)
	switch {
	case len(errs) == 0:
		return nil
	case len(errs) >= n:
		return fmt.Errorf("failed to query any %s: %w", kind, errors.Join(errs...))
	default:
		return &PartialError{Errs: errs}
	}
}

// merge combines errors from the steps of one action into a single
// *PartialError (nil if there are none). A step error that is already
// partial contributes its parts.
func merge(errs ...error) error {
	var all []error
	for _, err := range errs {
		if err == nil {
			continue
		}
		var pe *PartialError
		if errors.As(err, &pe) {
			all = append(all, pe.Errs...)
		} else {
			all = append(all, err)
		}
	}
	if len(all) == 0 {
		return nil
	}
	return &PartialError{Errs: all}
}

func compact(errs []error) []error {
	out := errs[:0:0]
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	return out
}

// fanOut calls fn for every item at once and waits for all of them. Result
// i and error i belong to items[i].
func fanOut[T any](items []string, fn func(item string) (T, error)) ([]T, []error) {
	results := make([]T, len(items))
	errs := make([]error, len(items))
	var wg sync.WaitGroup
	for i, item := range items {
		wg.Go(func() { results[i], errs[i] = fn(item) })
	}
	wg.Wait()
	return results, errs
}

// endpoint is the URL of path on the node at addr. addr is host:port, or a
// base URL with an http or https scheme.
func endpoint(addr, path string, q url.Values) string {
	base := addr
	if !strings.HasPrefix(addr, "http://") && !strings.HasPrefix(addr, "https://") {
		base = "http://" + addr
	}
	u := strings.TrimRight(base, "/") + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	return u
}

// timed runs req, one request to the node of kind at addr for path, and
// reports it to Config.Observe.
func (c *Client) timed(kind, addr, path string, req func() error) error {
	if c.observe == nil {
		return req()
	}
	start := time.Now()
	err := req()
	c.observe(kind, addr, path, time.Since(start), err)
	return err
}

// get GETs path?q from the node of kind at addr and decodes its JSON
// into v.
func (c *Client) get(ctx context.Context, kind, addr, path string, q url.Values, v any) error {
	return c.timed(kind, addr, path, func() error { return c.getJSON(ctx, endpoint(addr, path, q), v) })
}

// getJSON GETs u and decodes its JSON into v.
func (c *Client) getJSON(ctx context.Context, u string, v any) error {
	body, err := c.do(ctx, http.MethodGet, u, nil, "")
	if err != nil {
		return err
	}
	if err := json.Unmarshal(unwrapLegacy(body), v); err != nil {
		return fmt.Errorf("GET %s: decode response: %w", u, err)
	}
	return nil
}

// post POSTs path?q to the node of kind at addr with an empty body, as
// NSQ's admin calls are made.
func (c *Client) post(ctx context.Context, kind, addr, path string, q url.Values) error {
	return c.timed(kind, addr, path, func() error {
		_, err := c.do(ctx, http.MethodPost, endpoint(addr, path, q), nil, "")
		return err
	})
}

// PostJSON POSTs body as application/json to u and expects a 2xx answer.
// nsqadmin sends its notifications with it.
func (c *Client) PostJSON(ctx context.Context, u string, body []byte) error {
	_, err := c.do(ctx, http.MethodPost, u, body, "application/json")
	return err
}

// do performs one request. An nsqd that answers 403 TLS_REQUIRED to plain
// HTTP names its HTTPS port; the request is then retried there once.
func (c *Client) do(ctx context.Context, method, u string, body []byte, contentType string) ([]byte, error) {
	for attempt := 0; ; attempt++ {
		resp, err := c.once(ctx, method, u, body, contentType)
		if err != nil {
			return nil, err
		}
		if resp.status/100 == 2 {
			return resp.body, nil
		}
		if resp.status == http.StatusForbidden && attempt == 0 && strings.HasPrefix(u, "http://") {
			if alt, ok := httpsRetry(u, resp.body); ok {
				c.log.Debug("retrying over HTTPS", "url", alt)
				u = alt
				continue
			}
		}
		text := strings.TrimSpace(string(resp.body))
		if len(text) > 200 {
			text = text[:200]
		}
		return nil, &StatusError{Method: method, URL: u, Status: resp.status, Body: text}
	}
}

type response struct {
	status int
	body   []byte
}

func (c *Client) once(ctx context.Context, method, u string, body []byte, contentType string) (response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, rd)
	if err != nil {
		return response{}, err
	}
	// Old nsqd versions wrap JSON in {status_code, status_txt, data} unless
	// asked for the V1 format this way.
	req.Header.Set("Accept", "application/vnd.nsq; version=1.0")
	if c.secret != "" {
		req.Header.Set("Authorization", "Bearer "+c.secret)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	c.log.Debug("querying node", "method", method, "url", u)
	resp, err := c.hc.Do(req)
	if err != nil {
		return response{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return response{}, fmt.Errorf("%s %s: read response: %w", method, u, err)
	}
	return response{status: resp.StatusCode, body: b}, nil
}

// httpsRetry returns u moved to HTTPS on the port an nsqd's TLS_REQUIRED
// answer names.
func httpsRetry(u string, body []byte) (string, bool) {
	var r struct {
		Message   string `json:"message"`
		HTTPSPort int    `json:"https_port"`
	}
	if json.Unmarshal(body, &r) != nil || r.Message != "TLS_REQUIRED" || r.HTTPSPort <= 0 {
		return "", false
	}
	pu, err := url.Parse(u)
	if err != nil {
		return "", false
	}
	pu.Scheme = "https"
	pu.Host = net.JoinHostPort(pu.Hostname(), strconv.Itoa(r.HTTPSPort))
	return pu.String(), true
}

// unwrapLegacy returns the data of a pre-1.0 {"status_code":200,
// "status_txt":"OK","data":…} answer, or b unchanged.
func unwrapLegacy(b []byte) []byte {
	if !bytes.Contains(b, []byte(`"status_code"`)) {
		return b
	}
	var w struct {
		StatusCode *int            `json:"status_code"`
		StatusTxt  *string         `json:"status_txt"`
		Data       json.RawMessage `json:"data"`
	}
	if json.Unmarshal(b, &w) != nil || w.StatusCode == nil || w.StatusTxt == nil || w.Data == nil {
		return b
	}
	return w.Data
}

// GetJSON GETs an arbitrary URL (a Graphite render, say) with the client's
// timeouts and decodes its JSON answer into v.
func (c *Client) GetJSON(ctx context.Context, u string, v any) error { return c.getJSON(ctx, u, v) }

// Transport is the client's round tripper, for proxies that should share
// its timeouts and TLS settings.
func (c *Client) Transport() http.RoundTripper { return c.hc.Transport }
