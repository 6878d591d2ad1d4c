// Command nsq_stat polls the /stats of every nsqd that has a topic and
// prints one line per interval for one of its channels, summed over the
// nsqds, like NSQ's nsq_stat:
//
//	nsq_stat --lookupd-http-address=127.0.0.1:4161 --topic=events --channel=archive
//
// The rates are messages per second over the last interval: ingress is
// what the channel received, egress what left it (finished or otherwise
// removed from the depth). A header is printed before the first poll and
// every 25 lines. With --count N it prints N lines and exits 0; otherwise
// it runs until SIGINT or SIGTERM (exit 0). Bad flags exit 2; a failed
// poll or a channel that no nsqd has exits 1.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/nsqx/nsqx/internal/toolflags"
	"github.com/nsqx/nsqx/internal/version"
)

func main() { toolflags.Main(run) }

const about = `Every --interval, reads /stats?format=json from each nsqd given with
--nsqd-http-address, or from each producer of the topic that nsqlookupd
reports (--lookupd-http-address: GET /lookup?topic=, then each producer's
broadcast_address:http_port), sums the channel's counters over the nsqds and
prints them with the ingress and egress rates in messages per second.

Columns: ingress, egress | depth total, in memory, on disk, in flight,
deferred | requeued, timed out, messages received, connected clients.`

// headerEvery is how many polls apart the column headers are repeated.
const headerEvery = 25

type options struct {
	topic          string
	channel        string
	nsqdAddrs      toolflags.Strings
	lookupAddrs    toolflags.Strings
	interval       time.Duration
	count          int
	connectTimeout time.Duration
	requestTimeout time.Duration
	authSecret     string
}

func newTool() (*toolflags.Tool, *options) {
	t := toolflags.New("nsq_stat",
		"nsq_stat --topic=TOPIC --channel=CHANNEL (--nsqd-http-address=ADDR | --lookupd-http-address=ADDR) [flags]", about)
	o := &options{}
	fs := t.Flags
	fs.StringVar(&o.topic, "topic", "", "NSQ `topic`")
	fs.StringVar(&o.channel, "channel", "", "NSQ `channel` of the topic")
	fs.Var(&o.nsqdAddrs, "nsqd-http-address", "nsqd HTTP `address` (host:port, no scheme; repeatable)")
	fs.Var(&o.lookupAddrs, "lookupd-http-address", "nsqlookupd HTTP `address` (host:port, no scheme; repeatable)")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "time between polls")
	fs.IntVar(&o.count, "count", 0, "print this many lines, then exit (default: until interrupted)")
	fs.DurationVar(&o.connectTimeout, "http-client-connect-timeout", 2*time.Second, "timeout for connecting to an HTTP server")
	fs.DurationVar(&o.requestTimeout, "http-client-request-timeout", 5*time.Second, "timeout for a whole HTTP request")
	fs.StringVar(&o.authSecret, "http-client-auth-secret", "", "`secret` sent as a bearer token to nsqds whose HTTP API requires auth (nsqx)")
	return t, o
}

// run is the whole command; it returns the exit code.
func run(ctx context.Context, args []string, _ io.Reader, stdout, stderr io.Writer) int {
	tool, o := newTool()
	if code, done := tool.Parse(args, stdout, stderr); done {
		return code
	}
	countSet := false
	tool.Flags.Visit(func(f *flag.Flag) { countSet = countSet || f.Name == "count" })
	if err := validate(o, countSet); err != nil {
		return tool.UsageError(stderr, "%v", err)
	}

	log := toolflags.NewLogger(stderr, "", slog.LevelInfo)
	p := &poller{
		client:  newHTTPClient(o.connectTimeout, o.requestTimeout),
		secret:  o.authSecret,
		log:     log,
		topic:   o.topic,
		channel: o.channel,
		nsqds:   o.nsqdAddrs,
		lookups: o.lookupAddrs,
	}
	if err := loop(ctx, p, o.interval, o.count, stdout); err != nil {
		if ctx.Err() != nil {
			return toolflags.ExitOK // interrupted mid-poll
		}
		return tool.Fail(stderr, err)
	}
	return toolflags.ExitOK
}

func validate(o *options, countSet bool) error {
	if o.topic == "" || o.channel == "" {
		return errors.New("--topic and --channel are required")
	}
	if err := toolflags.CheckSource(o.nsqdAddrs, o.lookupAddrs, "nsqd-http-address", "lookupd-http-address"); err != nil {
		return err
	}
	for _, list := range []struct {
		flag  string
		addrs []string
	}{{"nsqd-http-address", o.nsqdAddrs}, {"lookupd-http-address", o.lookupAddrs}} {
		for _, a := range list.addrs {
			if strings.Contains(a, "://") || strings.HasPrefix(a, "http") {
				return fmt.Errorf("--%s %q: give host:port without a scheme", list.flag, a)
			}
		}
	}
	switch {
	case o.interval <= 0:
		return errors.New("--interval must be positive")
	case o.connectTimeout <= 0:
		return errors.New("--http-client-connect-timeout must be positive")
	case o.requestTimeout <= 0:
		return errors.New("--http-client-request-timeout must be positive")
	case o.count < 0 || (countSet && o.count == 0):
		return errors.New("--count must be positive")
	}
	return nil
}

// loop polls count+1 times (forever when count is 0), printing a line for
// every poll after the first.
func loop(ctx context.Context, p *poller, interval time.Duration, count int, w io.Writer) error {
	var prev *channelStats
	timer := time.NewTimer(interval)
	timer.Stop()
	defer timer.Stop()
	for i := 0; count == 0 || i <= count; i++ {
		cur, err := p.poll(ctx)
		if err != nil {
			return err
		}
		if i%headerEvery == 0 {
			printHeader(w)
		}
		if prev != nil {
			printLine(w, prev, cur, interval)
		}
		prev = cur
		if count > 0 && i == count {
			break
		}
		timer.Reset(interval)
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
	}
	return nil
}

func printHeader(w io.Writer) {
	fmt.Fprintf(w, "%s+%s+%s\n", "------rate------",
		"----------------depth----------------", "--------------metadata---------------")
	fmt.Fprintf(w, "%7s %7s | %7s %7s %7s %5s %5s | %7s %7s %12s %7s\n",
		"ingress", "egress", "total", "mem", "disk", "inflt", "def", "req", "t-o", "msgs", "clients")
}

func printLine(w io.Writer, prev, cur *channelStats, interval time.Duration) {
	secs := interval.Seconds()
	received := delta(cur.MessageCount, prev.MessageCount)
	left := received - (cur.Depth - prev.Depth)
	fmt.Fprintf(w, "%7d %7d | %7d %7d %7d %5d %5d | %7d %7d %12d %7d\n",
		int64(float64(received)/secs), int64(float64(max(left, 0))/secs),
		cur.Depth, cur.Depth-cur.BackendDepth, cur.BackendDepth, cur.InFlightCount, cur.DeferredCount,
		cur.RequeueCount, cur.TimeoutCount, cur.MessageCount, cur.ClientCount)
}

// delta is cur-prev for a counter, 0 when it went backwards (an nsqd
// restarted or left).
func delta(cur, prev uint64) int64 {
	if cur < prev {
		return 0
	}
	return int64(cur - prev)
}

// channelStats is the part of a channel's /stats that nsq_stat shows,
// summed over nsqds.
type channelStats struct {
	ChannelName   string `json:"channel_name"`
	Depth         int64  `json:"depth"`
	BackendDepth  int64  `json:"backend_depth"`
	InFlightCount int64  `json:"in_flight_count"`
	DeferredCount int64  `json:"deferred_count"`
	MessageCount  uint64 `json:"message_count"`
	RequeueCount  uint64 `json:"requeue_count"`
	TimeoutCount  uint64 `json:"timeout_count"`
	ClientCount   int64  `json:"client_count"`
}

func (c *channelStats) add(o *channelStats) {
	c.Depth += o.Depth
	c.BackendDepth += o.BackendDepth
	c.InFlightCount += o.InFlightCount
	c.DeferredCount += o.DeferredCount
	c.MessageCount += o.MessageCount
	c.RequeueCount += o.RequeueCount
	c.TimeoutCount += o.TimeoutCount
	c.ClientCount += o.ClientCount
}

// poller fetches one channel's stats from a set of nsqds.
type poller struct {
	client  *http.Client
	secret  string
	log     *slog.Logger
	topic   string
	channel string
	nsqds   []string // fixed nsqd HTTP addresses, or
	lookups []string // nsqlookupd HTTP addresses to find them with
}

// poll returns the channel's stats summed over the nsqds that have it. A
// failing nsqd or lookupd is logged and skipped while others answer.
func (p *poller) poll(ctx context.Context) (*channelStats, error) {
	nsqds := p.nsqds
	if len(p.lookups) > 0 {
		var err error
		if nsqds, err = p.producers(ctx); err != nil {
			return nil, err
		}
	}
	sum := &channelStats{ChannelName: p.channel}
	found, answered := false, 0
	var lastErr error
	for _, addr := range nsqds {
		cs, err := p.nsqdChannel(ctx, addr)
		if err != nil {
			p.log.Warn("nsqd stats failed", "addr", addr, "err", err)
			lastErr = err
			continue
		}
		answered++
		if cs != nil {
			found = true
			sum.add(cs)
		}
	}
	switch {
	case len(nsqds) > 0 && answered == 0:
		return nil, fmt.Errorf("no nsqd answered: %w", lastErr)
	case !found:
		return nil, fmt.Errorf("channel %s of topic %s not found on any nsqd", p.channel, p.topic)
	}
	return sum, nil
}

// producers asks every lookupd for the topic's producers and returns their
// HTTP addresses, each once.
func (p *poller) producers(ctx context.Context) ([]string, error) {
	var addrs []string
	seen := map[string]bool{}
	answered := 0
	var lastErr error
	for _, l := range p.lookups {
		var resp struct {
			Producers []struct {
				BroadcastAddress string `json:"broadcast_address"`
				HTTPPort         int    `json:"http_port"`
			} `json:"producers"`
		}
		u := "http://" + l + "/lookup?topic=" + url.QueryEscape(p.topic)
		status, err := p.getJSON(ctx, u, &resp)
		if status == http.StatusNotFound {
			answered++ // TOPIC_NOT_FOUND: this lookupd knows no producer
			continue
		}
		if err != nil {
			p.log.Warn("nsqlookupd lookup failed", "addr", l, "err", err)
			lastErr = err
			continue
		}
		answered++
		for _, pr := range resp.Producers {
			a := net.JoinHostPort(pr.BroadcastAddress, strconv.Itoa(pr.HTTPPort))
			if !seen[a] {
				seen[a] = true
				addrs = append(addrs, a)
			}
		}
	}
	if answered == 0 {
		return nil, fmt.Errorf("no nsqlookupd answered: %w", lastErr)
	}
	return addrs, nil
}

// nsqdChannel returns the channel's stats on one nsqd, nil if it does not
// have the channel.
func (p *poller) nsqdChannel(ctx context.Context, addr string) (*channelStats, error) {
	q := url.Values{"format": {"json"}, "topic": {p.topic}, "channel": {p.channel},
		"include_clients": {"false"}, "include_mem": {"false"}}
	var stats struct {
		Topics []struct {
			TopicName string         `json:"topic_name"`
			Channels  []channelStats `json:"channels"`
		} `json:"topics"`
	}
	if _, err := p.getJSON(ctx, "http://"+addr+"/stats?"+q.Encode(), &stats); err != nil {
		return nil, err
	}
	for _, t := range stats.Topics {
		if t.TopicName != p.topic {
			continue
		}
		for i := range t.Channels {
			if t.Channels[i].ChannelName == p.channel {
				return &t.Channels[i], nil
			}
		}
	}
	return nil, nil
}

// getJSON GETs u and decodes a 200 response into v. It returns the status
// code, 0 if there was no response.
func (p *poller) getJSON(ctx context.Context, u string, v any) (int, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	req.Header.Set("User-Agent", "nsq_stat/"+version.Compat)
	req.Header.Set("Accept", "application/vnd.nsq; version=1.0")
	if p.secret != "" {
		req.Header.Set("Authorization", "Bearer "+p.secret)
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, fmt.Errorf("GET %s: %s: %s", u, resp.Status, strings.TrimSpace(string(body)))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return resp.StatusCode, fmt.Errorf("GET %s: %w", u, err)
	}
	return resp.StatusCode, nil
}

func newHTTPClient(connect, request time.Duration) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: connect, KeepAlive: 30 * time.Second}).DialContext
	tr.Proxy = nil
	return &http.Client{Transport: tr, Timeout: request}
}
