package bench

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is the machine-readable output of Run (--json).
type Report struct {
	Config ReportConfig `json:"config"`
	// Results holds, per workload and target, the median run.
	Results []Result `json:"results"`
	// Runs holds every run when each was repeated.
	Runs []Result `json:"runs,omitempty"`
}

// ReportConfig is the part of Config a reader of the results needs.
type ReportConfig struct {
	NSQDTCPAddress string  `json:"nsqd_tcp_address,omitempty"`
	ServerPID      int     `json:"server_pid,omitempty"`
	Size           int     `json:"size"`
	Batch          int     `json:"batch"`
	Conns          int     `json:"conns"`
	RDY            int     `json:"rdy"`
	Duration       float64 `json:"duration_s"`
	Count          int64   `json:"count"`
	Rate           int     `json:"rate"`
	Channels       int     `json:"channels"`
	Repeat         int     `json:"repeat"`
}

// Run runs every configured workload against nsqd (unless its address is
// empty) and, with cfg.Ceiling, against a fresh Ceiling, and writes a table
// per workload to out, or one JSON Report with cfg.JSON. Progress lines go
// to progress. It returns an error when any run failed; the report still
// shows the others.
func Run(ctx context.Context, cfg *Config, out, progress io.Writer) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	rep := Report{Config: ReportConfig{
		NSQDTCPAddress: cfg.NSQDTCPAddress, ServerPID: cfg.ServerPID,
		Size: cfg.Size, Batch: cfg.Batch, Conns: cfg.Conns, RDY: cfg.RDY,
		Duration: cfg.Duration.Seconds(), Count: cfg.Count, Rate: cfg.Rate, Channels: cfg.Channels,
		Repeat: cfg.Repeat,
	}}
	if !cfg.JSON {
		writeHeader(out, cfg)
	}
	var errs []error
	run := func(workload string, t Target) Result {
		fmt.Fprintf(progress, "%s: running against %s (%s)\n", workload, t.Name(), t.Addr())
		r, err := RunWorkload(ctx, cfg, workload, t)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s against %s: %w", workload, t.Name(), err))
		}
		return r
	}
	for _, wl := range cfg.Workloads {
		// nsqd and ceiling runs alternate, so a load change on a shared
		// machine hits both alike; each target's median run is reported.
		var nsqdRuns, ceilRuns []Result
		for i := 0; i < cfg.Repeat && ctx.Err() == nil; i++ {
			if cfg.NSQDTCPAddress != "" {
				nsqdRuns = append(nsqdRuns, run(wl, NewNSQD(cfg.NSQDTCPAddress, cfg.NSQDHTTPAddress, cfg.ServerPID, cfg.Timeout)))
			}
			if cfg.Ceiling && ctx.Err() == nil {
				srv, err := StartCeiling(CeilingConfig{MessageSize: cfg.Size, MaxRDY: cfg.RDY, Relay: wl == Latency})
				if err != nil {
					return fmt.Errorf("start ceiling: %w", err)
				}
				ceilRuns = append(ceilRuns, run(wl, CeilingTarget{srv}))
				srv.Close()
			}
		}
		var rows []Result
		for _, runs := range [][]Result{nsqdRuns, ceilRuns} {
			if len(runs) > 0 {
				rows = append(rows, median(runs))
			}
			if cfg.Repeat > 1 {
				rep.Runs = append(rep.Runs, runs...)
			}
		}
		setRatios(rows)
		if !cfg.JSON {
			writeTable(out, rows)
		}
		rep.Results = append(rep.Results, rows...)
		if ctx.Err() != nil {
			errs = append(errs, context.Cause(ctx))
			break
		}
	}
	if cfg.JSON {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// median returns the median of runs by rate (by p99 for latency), among
// the runs that succeeded if any did, with Runs set to the runs summarised.
func median(runs []Result) Result {
	ok := slices.DeleteFunc(slices.Clone(runs), func(r Result) bool { return r.Error != "" })
	if len(ok) == 0 {
		r := runs[len(runs)-1]
		r.Runs = len(runs)
		return r
	}
	slices.SortFunc(ok, func(a, b Result) int {
		if a.Latency != nil && b.Latency != nil {
			return cmp.Compare(a.Latency.P99, b.Latency.P99)
		}
		return cmp.Compare(a.MsgsPerSec, b.MsgsPerSec)
	})
	r := ok[len(ok)/2]
	r.Runs = len(runs)
	return r
}

// setRatios compares every row with the ceiling row of the same workload.
func setRatios(rows []Result) {
	var ceil *Result
	for i := range rows {
		if rows[i].Target == "ceiling" && rows[i].Error == "" {
			ceil = &rows[i]
		}
	}
	if ceil == nil {
		return
	}
	for i := range rows {
		r := &rows[i]
		if r.Error != "" {
			continue
		}
		if ceil.MsgsPerSec > 0 {
			r.Ratio = r.MsgsPerSec / ceil.MsgsPerSec
		}
		if r.Latency != nil && ceil.Latency != nil && ceil.Latency.P99 > 0 {
			r.P99Ratio = r.Latency.P99 / ceil.Latency.P99
		}
	}
}

func writeHeader(out io.Writer, cfg *Config) {
	fmt.Fprintf(out, "nsq_bench: size=%d batch=%d conns=%d rdy=%d duration=%s count=%d rate=%d channels=%d repeat=%d",
		cfg.Size, cfg.Batch, cfg.Conns, cfg.RDY, cfg.Duration, cfg.Count, cfg.Rate, cfg.Channels, cfg.Repeat)
	if cfg.NSQDTCPAddress != "" {
		fmt.Fprintf(out, " nsqd=%s", cfg.NSQDTCPAddress)
	}
	if cfg.ServerPID > 0 {
		fmt.Fprintf(out, " pid=%d", cfg.ServerPID)
	}
	fmt.Fprintln(out)
}

// writeTable prints one workload's rows and a note per row.
func writeTable(out io.Writer, rows []Result) {
	if len(rows) == 0 {
		return
	}
	fmt.Fprintln(out)
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "workload\ttarget\tmsgs/s\tMB/s\tvs ceiling\tsrv µs/msg\tbench µs/msg\tp50 µs\tp90 µs\tp99 µs\tp999 µs\tsrv RSS\t")
	for _, r := range rows {
		if r.Error != "" && r.Messages == 0 {
			fmt.Fprintf(tw, "%s\t%s\tfailed\t\t\t\t\t\t\t\t\t\t\n", r.Workload, r.Target)
			continue
		}
		vs := "-"
		switch {
		case r.Target == "ceiling":
			vs = "(ceiling)"
		case r.P99Ratio > 0:
			vs = "p99 " + strconv.FormatFloat(r.P99Ratio, 'f', 2, 64) + "×"
		case r.Ratio > 0:
			vs = strconv.FormatFloat(100*r.Ratio, 'f', 1, 64) + "%"
		}
		p50, p90, p99, p999 := "-", "-", "-", "-"
		if l := r.Latency; l != nil {
			p50, p90, p99, p999 = us(l.P50), us(l.P90), us(l.P99), us(l.P999)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%.1f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n",
			r.Workload, r.Target, group3(int64(r.MsgsPerSec+0.5)), r.MBPerSec, vs,
			cpu(r.ServerCPUPerMsg), cpu(r.BenchCPUPerMsg), p50, p90, p99, p999, mib(r.ServerRSS))
	}
	tw.Flush()
	for _, r := range rows {
		if note := notes(r); note != "" {
			fmt.Fprintf(out, "  %s/%s: %s\n", r.Workload, r.Target, note)
		}
	}
}

// notes returns the details of a row that do not fit the table.
func notes(r Result) string {
	var parts []string
	if r.Error != "" {
		parts = append(parts, "error: "+r.Error)
	}
	if r.Messages > 0 {
		parts = append(parts, fmt.Sprintf("%s msgs in %s", group3(r.Messages), r.Elapsed.Round(time.Millisecond)))
	}
	switch r.Workload {
	case PubSub, Fanout:
		if r.Elapsed > 0 {
			parts = append(parts, fmt.Sprintf("published %s (%s msgs/s)", group3(r.Published),
				group3(int64(float64(r.Published)/r.Elapsed.Seconds()))))
		}
	case Latency:
		parts = append(parts, fmt.Sprintf("published %s, lost %d", group3(r.Published), r.Lost))
		if r.Latency != nil {
			parts = append(parts, "max "+us(r.Latency.Max)+" µs")
		}
	}
	if r.Workload == Sub && r.Error == "" && r.Elapsed < 250*time.Millisecond {
		parts = append(parts, "short window, raise --count for a steadier figure")
	}
	if r.Runs > 1 {
		parts = append(parts, fmt.Sprintf("median of %d runs", r.Runs))
	}
	if v := math.Round(r.RSSPerQueued); v > 0 { // negative: the server spilled to disk, or freed garbage
		parts = append(parts, fmt.Sprintf("server RSS growth %.0f B per queued message", v))
	}
	if r.FinFailed > 0 {
		parts = append(parts, fmt.Sprintf("%d E_FIN_FAILED", r.FinFailed))
	}
	return strings.Join(parts, "; ")
}

func us(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

func cpu(v float64) string {
	if v == 0 {
		return "-"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func mib(b int64) string {
	if b == 0 {
		return "-"
	}
	return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB"
}

// group3 formats n with thousands separators.
func group3(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	if neg {
		s = s[1:]
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
