// Command nsq_to_http sends the messages of an NSQ topic to HTTP endpoints,
// one request per message, like NSQ's nsq_to_http.
//
//	nsq_to_http --lookupd-http-address=127.0.0.1:4161 --topic=events --post=http://127.0.0.1:8080/ingest
//	nsq_to_http --nsqd-tcp-address=127.0.0.1:4150 --topic=events --get='http://127.0.0.1:8080/hit?data=%s'
//
// A message is finished only after its request got a 2xx response; an error
// or any other status requeues it (go-nsq's backoff and requeue delay
// apply). SIGINT and SIGTERM let the requests under way complete, answer
// their messages and exit 0. Bad flags exit 2.
package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/nsqio/go-nsq"

	"github.com/nsqx/nsqx/internal/toolflags"
	"github.com/nsqx/nsqx/internal/version"
)

func main() { toolflags.Main(run) }

const about = `Makes one HTTP request per message: a POST of the message to a --post URL, or
a GET of a --get URL in which %s is replaced by the URL-escaped message. With
several URLs, --mode picks one per message:
  round-robin     in turn
  hostpool        in turn among the healthy ones; a failing URL is left out
                  for 30s, doubling on each further failure up to 15m
  epsilon-greedy  like hostpool, but mostly the fastest healthy URL
-n requests run at once. A 2xx response finishes the message; anything else
requeues it.`

type options struct {
	topic          string
	channel        string
	maxInFlight    int
	workers        int
	mode           toolflags.Mode
	sample         float64
	connectTimeout time.Duration
	requestTimeout time.Duration
	statusEvery    int
	contentType    string
	posts          toolflags.Strings
	gets           toolflags.Strings
	headers        toolflags.Strings
	nsqdAddrs      toolflags.Strings
	lookupAddrs    toolflags.Strings
	cfg            *nsq.Config
}

const defaultContentType = "application/octet-stream"

func newTool() (*toolflags.Tool, *options) {
	t := toolflags.New("nsq_to_http",
		"nsq_to_http --topic=TOPIC (--post=URL | --get=URL) (--nsqd-tcp-address=ADDR | --lookupd-http-address=ADDR) [flags]", about)
	o := &options{cfg: nsq.NewConfig(), mode: toolflags.HostPool}
	fs := t.Flags
	fs.StringVar(&o.topic, "topic", "", "NSQ `topic`")
	fs.StringVar(&o.channel, "channel", "nsq_to_http", "NSQ `channel`")
	fs.IntVar(&o.maxInFlight, "max-in-flight", 200, "most messages to have in flight at once")
	fs.IntVar(&o.workers, "n", 100, "number of requests to make at once")
	fs.Var(&o.mode, "mode", "how to pick a URL: round-robin, hostpool or epsilon-greedy")
	fs.Float64Var(&o.sample, "sample", 1.0, "`fraction` of messages to send, 0.0 to 1.0; the others are finished unsent")
	fs.DurationVar(&o.connectTimeout, "http-client-connect-timeout", 2*time.Second, "timeout for connecting to an endpoint")
	fs.DurationVar(&o.requestTimeout, "http-client-request-timeout", 20*time.Second, "timeout for a whole request")
	fs.IntVar(&o.statusEvery, "status-every", 250, "log request timings every this many requests (0: never)")
	fs.StringVar(&o.contentType, "content-type", defaultContentType, "Content-Type of POST requests")
	fs.Var(&o.posts, "post", "`URL` to POST each message to, as the body (repeatable)")
	fs.Var(&o.gets, "get", "`URL` to GET for each message, with %s replaced by the URL-escaped message (repeatable)")
	fs.Var(&o.headers, "header", "`key:value` header to add to every request (repeatable)")
	fs.Var(&o.nsqdAddrs, "nsqd-tcp-address", "nsqd TCP `address` to consume from (repeatable)")
	fs.Var(&o.lookupAddrs, "lookupd-http-address", "nsqlookupd HTTP `address` to discover nsqds with (repeatable)")
	toolflags.AddConfigOpt(fs, "consumer-opt", "consumer", o.cfg)
	return t, o
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	tool, o := newTool()
	if code, done := tool.Parse(args, stdout, stderr); done {
		return code
	}
	headers, err := validate(o)
	if err != nil {
		return tool.UsageError(stderr, "%v", err)
	}
	o.cfg.MaxInFlight = o.maxInFlight
	o.cfg.UserAgent = toolflags.UserAgent("nsq_to_http")
	c, err := nsq.NewConsumer(o.topic, o.channel, o.cfg)
	if err != nil {
		return tool.UsageError(stderr, "%v", err)
	}
	log := toolflags.NewLogger(stderr, "", slog.LevelInfo)
	nsqLog, nsqLevel := toolflags.NSQLogger(log)
	c.SetLogger(nsqLog, nsqLevel)

	s := &sender{
		client:      newHTTPClient(o.connectTimeout, o.requestTimeout, o.workers),
		method:      http.MethodPost,
		urls:        o.posts,
		pool:        toolflags.NewPool(o.mode, max(len(o.posts), len(o.gets))),
		contentType: o.contentType,
		headers:     headers,
		sample:      o.sample,
		total:       toolflags.NewTimings(log, "aggregate", o.statusEvery),
	}
	if len(o.gets) > 0 {
		s.method, s.urls = http.MethodGet, o.gets
	}
	if len(s.urls) > 1 {
		for _, u := range s.urls {
			s.perURL = append(s.perURL, toolflags.NewTimings(log, u, o.statusEvery))
		}
	}
	c.AddConcurrentHandlers(s, o.workers)
	if err := toolflags.Connect(c, o.nsqdAddrs, o.lookupAddrs); err != nil {
		c.Stop()
		<-c.StopChan
		return tool.Fail(stderr, err)
	}
	select {
	case <-ctx.Done():
		c.Stop()
		<-c.StopChan
	case <-c.StopChan:
	}
	return toolflags.ExitOK
}

// validate checks the options and returns the parsed --header values.
func validate(o *options) (http.Header, error) {
	if err := toolflags.CheckSource(o.nsqdAddrs, o.lookupAddrs, "nsqd-tcp-address", "lookupd-http-address"); err != nil {
		return nil, err
	}
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	headers := http.Header{}
	for _, h := range o.headers {
		k, v, ok := strings.Cut(h, ":")
		k, v = strings.TrimSpace(k), strings.TrimSpace(v)
		if !ok || k == "" || v == "" {
			bad("--header %q: want key:value", h)
			continue
		}
		headers.Set(k, v)
	}
	if o.topic == "" || o.channel == "" {
		bad("--topic and --channel are required")
	}
	switch {
	case len(o.gets) == 0 && len(o.posts) == 0:
		bad("--get or --post required")
	case len(o.gets) > 0 && len(o.posts) > 0:
		bad("use --get or --post, not both")
	}
	for _, g := range o.gets {
		if strings.Count(g, "%s") != 1 {
			bad("--get %q: must contain %%s exactly once", g)
		}
	}
	for _, u := range append(append([]string(nil), o.gets...), o.posts...) {
		if p, err := url.Parse(strings.Replace(u, "%s", "", 1)); err != nil || (p.Scheme != "http" && p.Scheme != "https") || p.Host == "" {
			bad("%q is not an http:// or https:// URL", u)
		}
	}
	if o.contentType != defaultContentType {
		if len(o.posts) == 0 {
			bad("--content-type only used with --post")
		}
		if o.contentType == "" {
			bad("--content-type requires a value when used")
		}
	}
	if o.sample < 0 || o.sample > 1 {
		bad("--sample must be between 0.0 and 1.0")
	}
	if o.workers < 1 {
		bad("-n must be at least 1")
	}
	if o.maxInFlight < 1 {
		bad("--max-in-flight must be at least 1")
	}
	if o.connectTimeout <= 0 || o.requestTimeout <= 0 {
		bad("--http-client-connect-timeout and --http-client-request-timeout must be positive")
	}
	return headers, errors.Join(errs...)
}

// sender is the handler: one request per message to a URL the pool picks.
type sender struct {
	client      *http.Client
	method      string
	urls        []string
	pool        *toolflags.Pool
	contentType string
	headers     http.Header
	sample      float64
	total       *toolflags.Timings
	perURL      []*toolflags.Timings // nil with a single URL
}

// HandleMessage returns an error, which requeues m, when the request fails.
func (s *sender) HandleMessage(m *nsq.Message) error {
	if s.sample < 1 && rand.Float64() >= s.sample {
		return nil // not in the sample: done with it
	}
	i := s.pool.Pick()
	start := time.Now()
	err := s.send(s.urls[i], m.Body)
	s.pool.Mark(i, time.Since(start), err)
	if err != nil {
		return err
	}
	if s.perURL != nil {
		s.perURL[i].Add(start)
	}
	s.total.Add(start)
	return nil
}

func (s *sender) send(u string, body []byte) error {
	var r io.Reader
	if s.method == http.MethodGet {
		u = strings.Replace(u, "%s", url.QueryEscape(string(body)), 1)
	} else {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequest(s.method, u, r)
	if err != nil {
		return err
	}
	req.Header.Set("User-Agent", "nsq_to_http v"+version.Compat)
	if s.method == http.MethodPost {
		req.Header.Set("Content-Type", s.contentType)
	}
	for k, v := range s.headers {
		req.Header[k] = v
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return err
	}
	// Read the body so the connection can be reused.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: status %d", s.method, u, resp.StatusCode)
	}
	return nil
}

// newHTTPClient keeps up to one idle connection per worker and host.
func newHTTPClient(connect, request time.Duration, workers int) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = workers
	tr.MaxIdleConns = 0 // no overall limit
	return &http.Client{Transport: tr, Timeout: request}
}
