package bench

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// Workload names.
const (
	Pub     = "pub"
	Sub     = "sub"
	PubSub  = "pubsub"
	Latency = "latency"
	Fanout  = "fanout"
)

// Workloads lists every workload in the order "all" runs them.
var Workloads = []string{Pub, Sub, PubSub, Latency, Fanout}

// Config is everything nsq_bench can be told.
type Config struct {
	NSQDTCPAddress  string // "" skips nsqd and runs the ceilings only
	NSQDHTTPAddress string // "" skips preparing topics over HTTP
	ServerPID       int    // nsqd's pid, for CPU and RSS; 0 when unknown

	Workloads []string
	Ceiling   bool // also run each workload against a Ceiling
	JSON      bool

	Size     int           // message body bytes
	Batch    int           // messages per MPUB
	Conns    int           // publisher and consumer connections
	RDY      int           // RDY of each consumer
	Duration time.Duration // length of each timed run
	Count    int64         // messages pre-filled for sub
	Rate     int           // latency workload messages per second
	Channels int           // fanout channels
	Topic    string        // topic name prefix

	Repeat   int           // runs of each workload per target; the median is reported
	Pipeline int           // MPUB commands a publisher leaves unacknowledged
	Backlog  int64         // pubsub/fanout: undelivered messages before publishers wait
	Timeout  time.Duration // deadline of every read, write, dial and HTTP call
}

// DefaultConfig returns the defaults of nsq_bench's flags.
func DefaultConfig() Config {
	return Config{
		NSQDTCPAddress:  "127.0.0.1:4150",
		NSQDHTTPAddress: "127.0.0.1:4151",
		Workloads:       []string{Pub},
		Ceiling:         true,
		Size:            200,
		Batch:           200,
		Conns:           runtime.NumCPU(),
		RDY:             2500,
		Duration:        10 * time.Second,
		Count:           1_000_000,
		Rate:            10_000,
		Channels:        10,
		Topic:           "bench",
		Repeat:          1,
		Pipeline:        4,
		Backlog:         50_000,
		Timeout:         10 * time.Second,
	}
}

// ParseWorkloads turns "all" or a comma-separated list into workload names.
func ParseWorkloads(s string) ([]string, error) {
	if s == "all" {
		return slices.Clone(Workloads), nil
	}
	var out []string
	for w := range strings.SplitSeq(s, ",") {
		w = strings.TrimSpace(w)
		if !slices.Contains(Workloads, w) {
			return nil, fmt.Errorf("unknown workload %q (want one of %s or all)", w, strings.Join(Workloads, ", "))
		}
		out = append(out, w)
	}
	return out, nil
}

// Validate reports every out-of-range setting.
func (c *Config) Validate() error {
	var errs []error
	check := func(ok bool, format string, args ...any) {
		if !ok {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	check(len(c.Workloads) > 0, "no workload")
	for _, w := range c.Workloads {
		check(slices.Contains(Workloads, w), "unknown workload %q", w)
		check(wire.ValidName(c.topic(w)), "--topic %q: %q is not a valid topic name", c.Topic, c.topic(w))
	}
	check(c.NSQDTCPAddress != "" || c.Ceiling, "nothing to run: no --nsqd-tcp-address and --ceiling=false")
	check(c.Size >= 1 && c.Size <= ceilingMaxMsgSize, "--size %d out of range 1..%d", c.Size, ceilingMaxMsgSize)
	check(!slices.Contains(c.Workloads, Latency) || c.Size >= 8, "--size %d: the latency workload needs at least 8 bytes", c.Size)
	check(c.Batch >= 1 && int64(c.Batch)*int64(c.Size+4) <= ceilingMaxBodySize-4,
		"--batch %d: MPUB body of %d × %d bytes exceeds %d", c.Batch, c.Batch, c.Size, ceilingMaxBodySize)
	check(c.Conns >= 1 && c.Conns <= 1024, "--conns %d out of range 1..1024", c.Conns)
	check(c.RDY >= 1 && c.RDY <= 1_000_000, "--rdy %d out of range 1..1000000", c.RDY)
	check(c.Duration > 0, "--duration must be positive")
	check(c.Count >= 1, "--count must be positive")
	check(c.Rate >= 1 && c.Rate <= 10_000_000, "--rate %d out of range 1..10000000", c.Rate)
	check(c.Channels >= 1 && c.Channels <= 1000, "--channels %d out of range 1..1000", c.Channels)
	check(c.Repeat >= 1 && c.Repeat <= 100, "--repeat %d out of range 1..100", c.Repeat)
	check(c.Pipeline >= 1, "--pipeline must be positive")
	check(c.Backlog >= 1, "--backlog must be positive")
	check(c.Timeout > 0, "--timeout must be positive")
	check(c.ServerPID >= 0, "--server-pid must not be negative")
	return errors.Join(errs...)
}

// topic is the topic a workload uses.
func (c *Config) topic(workload string) string { return c.Topic + "_" + workload }
