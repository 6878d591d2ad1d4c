// Command nsq_bench measures an nsqd over raw protocol V2 and compares it
// with in-process ceiling servers run by the same clients on the same
// machine (see internal/bench for the workloads and the ceilings).
//
//	nsq_bench --workload=all --server-pid=$(pidof nsqd)
//
// Each workload prints a table: msgs/s, MB/s, the ratio to the ceiling
// (for latency, the ratio of the p99s), server CPU µs per message (with
// --server-pid), this process's CPU µs per message, latency percentiles
// (latency workload) and the server's RSS. --json prints one JSON document
// instead. Topics are named <--topic>_<workload>; nsq_bench deletes them
// and recreates them (with their channels) over nsqd's HTTP API before a
// run and deletes them after it. With --nsqd-http-address= it does neither
// and relies on PUB and SUB creating them. The exit code is 1 when any run
// failed, 2 on bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/nsqx/nsqx/internal/bench"
	"github.com/nsqx/nsqx/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole command with its inputs and outputs passed in; it
// returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	cfg, showVersion, err := parse(args, stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
		return 0
	case err != nil:
		fmt.Fprintln(stderr, "nsq_bench:", err)
		return 2
	case showVersion:
		fmt.Fprintln(stdout, version.String("nsq_bench"))
		return 0
	}
	if err := bench.Run(ctx, cfg, stdout, stderr); err != nil {
		fmt.Fprintln(stderr, "nsq_bench:", err)
		return 1
	}
	return 0
}

// parse binds the flags to a bench.Config.
func parse(args []string, stderr io.Writer) (*bench.Config, bool, error) {
	cfg := bench.DefaultConfig()
	fs := flag.NewFlagSet("nsq_bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	workloads := strings.Join(cfg.Workloads, ",")
	showVersion := fs.Bool("version", false, "print version and exit")
	fs.StringVar(&cfg.NSQDTCPAddress, "nsqd-tcp-address", cfg.NSQDTCPAddress, "nsqd TCP address (empty: run the ceilings only)")
	fs.StringVar(&cfg.NSQDHTTPAddress, "nsqd-http-address", cfg.NSQDHTTPAddress, "nsqd HTTP address, used to prepare and delete topics and read /stats (empty: let PUB and SUB create topics, do not wait for the sub prefill)")
	fs.IntVar(&cfg.ServerPID, "server-pid", 0, "pid of the nsqd process, to report its CPU per message and RSS from /proc")
	fs.StringVar(&workloads, "workload", workloads, "workload: pub, sub, pubsub, latency, fanout, a comma-separated list, or all")
	fs.BoolVar(&cfg.Ceiling, "ceiling", cfg.Ceiling, "also run each workload against the built-in ceiling servers")
	fs.BoolVar(&cfg.JSON, "json", cfg.JSON, "print one JSON document instead of tables")
	fs.IntVar(&cfg.Size, "size", cfg.Size, "message body size in bytes")
	fs.IntVar(&cfg.Batch, "batch", cfg.Batch, "messages per MPUB")
	fs.IntVar(&cfg.Conns, "conns", cfg.Conns, "publisher connections, and consumer connections for sub and pubsub")
	fs.IntVar(&cfg.RDY, "rdy", cfg.RDY, "RDY count of each consumer")
	fs.DurationVar(&cfg.Duration, "duration", cfg.Duration, "length of each timed run")
	fs.Int64Var(&cfg.Count, "count", cfg.Count, "messages pre-filled for the sub workload (it stops when they are drained or --duration passes)")
	fs.IntVar(&cfg.Rate, "rate", cfg.Rate, "messages per second of the latency workload")
	fs.IntVar(&cfg.Channels, "channels", cfg.Channels, "channels of the fanout workload")
	fs.StringVar(&cfg.Topic, "topic", cfg.Topic, "topic name prefix; each workload uses <prefix>_<workload>, deleted after the run")
	fs.IntVar(&cfg.Repeat, "repeat", cfg.Repeat, "runs of each workload against each target, alternating; the median run is reported")
	fs.IntVar(&cfg.Pipeline, "pipeline", cfg.Pipeline, "MPUB commands a publisher may leave unacknowledged")
	fs.Int64Var(&cfg.Backlog, "backlog", cfg.Backlog, "pubsub and fanout: undelivered messages (per channel) above which publishers wait")
	fs.DurationVar(&cfg.Timeout, "timeout", cfg.Timeout, "deadline of every network read, write, dial and HTTP call")
	if err := fs.Parse(args); err != nil {
		return nil, false, err
	}
	if fs.NArg() > 0 {
		return nil, false, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *showVersion {
		return &cfg, true, nil
	}
	var err error
	if cfg.Workloads, err = bench.ParseWorkloads(workloads); err != nil {
		return nil, false, err
	}
	return &cfg, false, cfg.Validate()
}
