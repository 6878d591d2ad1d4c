package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Target is a server a workload runs against.
type Target interface {
	// Name labels the target in reports ("nsqd", "ceiling").
	Name() string
	// Addr is the TCP address clients connect to.
	Addr() string
	// Prepare makes topic exist with the given channels, all empty.
	Prepare(ctx context.Context, topic string, channels []string) error
	// WaitQueued waits until at least n messages are queued on channel.
	WaitQueued(ctx context.Context, topic, channel string, n int64) error
	// Remove deletes topic and what it holds.
	Remove(ctx context.Context, topic string) error
	// Usage reports the server process's CPU time and RSS; ok is false
	// when they cannot be told apart from the benchmark's own.
	Usage() (u Usage, ok bool, err error)
}

// NSQD is the Target of a running nsqd.
type NSQD struct {
	TCPAddr string
	// HTTPAddr is the host:port of the HTTP API. When empty, topics and
	// channels are not prepared or deleted (PUB and SUB create them) and
	// a prefill is not waited for.
	HTTPAddr string
	PID      int // 0 when unknown: no CPU or RSS figures
	http     http.Client
}

// NewNSQD returns the Target of the nsqd at tcpAddr and httpAddr.
func NewNSQD(tcpAddr, httpAddr string, pid int, timeout time.Duration) *NSQD {
	return &NSQD{TCPAddr: tcpAddr, HTTPAddr: httpAddr, PID: pid, http: http.Client{Timeout: timeout}}
}

func (t *NSQD) Name() string { return "nsqd" }
func (t *NSQD) Addr() string { return t.TCPAddr }

// post calls POST path?query and accepts the listed status codes besides 200.
func (t *NSQD) post(ctx context.Context, path string, query url.Values, accept ...int) error {
	u := "http://" + t.HTTPAddr + path + "?" + query.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode == http.StatusOK {
		return nil
	}
	for _, code := range accept {
		if resp.StatusCode == code {
			return nil
		}
	}
	return fmt.Errorf("POST %s: %s %s", u, resp.Status, body)
}

// Prepare deletes topic if it exists and creates it and its channels.
func (t *NSQD) Prepare(ctx context.Context, topic string, channels []string) error {
	if t.HTTPAddr == "" {
		return nil
	}
	q := url.Values{"topic": {topic}}
	if err := t.post(ctx, "/topic/delete", q, http.StatusNotFound); err != nil {
		return err
	}
	if err := t.post(ctx, "/topic/create", q); err != nil {
		return err
	}
	for _, ch := range channels {
		q := url.Values{"topic": {topic}, "channel": {ch}}
		if err := t.post(ctx, "/channel/create", q); err != nil {
			return err
		}
		// The topic was just created; emptying is for a server that kept
		// a channel across the delete.
		if err := t.post(ctx, "/channel/empty", q); err != nil {
			return err
		}
	}
	return nil
}

func (t *NSQD) Remove(ctx context.Context, topic string) error {
	if t.HTTPAddr == "" {
		return nil
	}
	return t.post(ctx, "/topic/delete", url.Values{"topic": {topic}}, http.StatusNotFound)
}

// statsChannel is the part of a /stats channel the benchmark reads.
type statsChannel struct {
	Name     string `json:"channel_name"`
	Depth    int64  `json:"depth"`
	InFlight int64  `json:"in_flight_count"`
	Deferred int64  `json:"deferred_count"`
}

type statsTopic struct {
	Name     string         `json:"topic_name"`
	Channels []statsChannel `json:"channels"`
}

// queued reads how many messages channel holds from /stats.
func (t *NSQD) queued(ctx context.Context, topic, channel string) (int64, error) {
	q := url.Values{
		"format": {"json"}, "topic": {topic}, "channel": {channel},
		"include_clients": {"false"}, "include_mem": {"false"},
	}
	u := "http://" + t.HTTPAddr + "/stats?" + q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := t.http.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	// NSQ 1.x answers unwrapped; older servers wrap the answer in "data".
	var stats struct {
		Topics []statsTopic `json:"topics"`
		Data   *struct {
			Topics []statsTopic `json:"topics"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&stats); err != nil {
		return 0, fmt.Errorf("GET %s: %w", u, err)
	}
	topics := stats.Topics
	if topics == nil && stats.Data != nil {
		topics = stats.Data.Topics
	}
	for _, tp := range topics {
		if tp.Name != topic {
			continue
		}
		for _, ch := range tp.Channels {
			if ch.Name == channel {
				return ch.Depth + ch.InFlight + ch.Deferred, nil
			}
		}
	}
	return 0, fmt.Errorf("GET %s: channel %s/%s not in stats", u, topic, channel)
}

// WaitQueued polls /stats until channel holds n messages.
func (t *NSQD) WaitQueued(ctx context.Context, topic, channel string, n int64) error {
	if t.HTTPAddr == "" {
		return nil
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		got, err := t.queued(ctx, topic, channel)
		if err != nil {
			return err
		}
		if got >= n {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %d messages on %s/%s (have %d): %w", n, topic, channel, got, context.Cause(ctx))
		case <-tick.C:
		}
	}
}

func (t *NSQD) Usage() (Usage, bool, error) {
	if t.PID <= 0 {
		return Usage{}, false, nil
	}
	u, err := processUsage(t.PID)
	return u, err == nil, err
}

// CeilingTarget is the Target of a Ceiling.
type CeilingTarget struct{ *Ceiling }

func (t CeilingTarget) Name() string { return "ceiling" }

func (t CeilingTarget) Prepare(context.Context, string, []string) error { return nil }
func (t CeilingTarget) Remove(context.Context, string) error            { return nil }

// WaitQueued checks that n messages are available on channel; a ceiling
// queues a message as soon as it acknowledges it.
func (t CeilingTarget) WaitQueued(_ context.Context, _ string, channel string, n int64) error {
	avail := t.published.Load() - t.channel(channel).taken.Load()
	if avail < n {
		return errors.New("ceiling: fewer messages published than expected")
	}
	return nil
}

// Usage is unknown: the ceiling shares the benchmark's process.
func (t CeilingTarget) Usage() (Usage, bool, error) { return Usage{}, false, nil }
