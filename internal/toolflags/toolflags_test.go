package toolflags

import (
	"bytes"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsqio/go-nsq"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args   []string
		code   int
		done   bool
		stdout string
		stderr string
	}{
		{[]string{}, 0, false, "", ""},
		{[]string{"-x=1", "--x=2"}, 0, false, "", ""},
		{[]string{"-h"}, 0, true, "Usage: demo [flags]\n\nDoes things.\n\nFlags:\n  -version\n    \tprint the version and exit\n  -x value\n    \tan x (repeatable)\n", ""},
		{[]string{"--help"}, 0, true, "Usage: demo [flags]", ""},
		{[]string{"--version", "--bogus"}, 2, true, "", "demo: flag provided but not defined: -bogus\nRun 'demo -h' for usage.\n"},
		{[]string{"--version"}, 0, true, "demo v1.3.0 (nsqx ", ""},
		{[]string{"arg"}, 2, true, "", "demo: unexpected argument \"arg\" (all options are flags)\nRun 'demo -h' for usage.\n"},
	}
	for _, tt := range tests {
		tool := New("demo", "demo [flags]", "Does things.")
		var xs Strings
		tool.Flags.Var(&xs, "x", "an x (repeatable)")
		var stdout, stderr bytes.Buffer
		code, done := tool.Parse(tt.args, &stdout, &stderr)
		if code != tt.code || done != tt.done || !strings.HasPrefix(stdout.String(), tt.stdout) || stderr.String() != tt.stderr {
			t.Errorf("Parse(%q) = %d, %v, stdout %q, stderr %q; want %d, %v, stdout prefix %q, stderr %q",
				tt.args, code, done, stdout.String(), stderr.String(), tt.code, tt.done, tt.stdout, tt.stderr)
		}
		if len(tt.args) == 2 && !done && !slices.Equal(xs, []string{"1", "2"}) {
			t.Errorf("Parse(%q): x = %q, want [1 2]", tt.args, xs)
		}
	}
}

func TestConfigOpt(t *testing.T) {
	cfg := nsq.NewConfig()
	opt := ConfigOpt{cfg}
	for _, s := range []string{"max_attempts,7", "read_timeout,5s", "tls_v1", "auth_secret,a,b"} {
		if err := opt.Set(s); err != nil {
			t.Errorf("Set(%q): %v", s, err)
		}
	}
	if cfg.MaxAttempts != 7 || cfg.ReadTimeout != 5*time.Second || !cfg.TlsV1 || cfg.AuthSecret != "a,b" {
		t.Errorf("config = attempts %d, read timeout %v, tls %v, secret %q; want 7, 5s, true, \"a,b\"",
			cfg.MaxAttempts, cfg.ReadTimeout, cfg.TlsV1, cfg.AuthSecret)
	}
	for _, s := range []string{"no_such_option,1", "max_attempts,many", "max_in_flight,-1"} {
		if err := opt.Set(s); err == nil {
			t.Errorf("Set(%q) = nil, want an error", s)
		}
	}
}

func TestCheckSource(t *testing.T) {
	if err := CheckSource([]string{"a"}, nil, "n", "l"); err != nil {
		t.Errorf("one nsqd: %v", err)
	}
	if err := CheckSource(nil, []string{"a"}, "n", "l"); err != nil {
		t.Errorf("one lookupd: %v", err)
	}
	if err := CheckSource(nil, nil, "n", "l"); err == nil || err.Error() != "--n or --l required" {
		t.Errorf("none: %v", err)
	}
	if err := CheckSource([]string{"a"}, []string{"b"}, "n", "l"); err == nil || err.Error() != "use --n or --l, not both" {
		t.Errorf("both: %v", err)
	}
}

func TestLevel(t *testing.T) {
	var l slog.Level
	for name, want := range map[string]slog.Level{"debug": slog.LevelDebug, "INFO": slog.LevelInfo, "Warn": slog.LevelWarn, "error": slog.LevelError, "fatal": LevelFatal} {
		if err := (Level{&l}).Set(name); err != nil || l != want {
			t.Errorf("Set(%q) = %v, level %v; want %v", name, err, l, want)
		}
	}
	if err := (Level{&l}).Set("verbose"); err == nil {
		t.Errorf("Set(verbose) = nil, want an error")
	}
}

func TestNSQLogger(t *testing.T) {
	var buf bytes.Buffer
	l := NewLogger(&buf, "[p] ", slog.LevelInfo)
	nl, lvl := NSQLogger(l)
	if lvl != nsq.LogLevelWarning {
		t.Errorf("go-nsq level = %v, want warning", lvl)
	}
	nl.Output(2, "WRN    1 [t/c] backing off")
	nl.Output(2, "DBG    1 [t/c] noise")
	got := buf.String()
	if !strings.HasPrefix(got, "[p] ") || !strings.Contains(got, `level=WARN msg=go-nsq line="1 [t/c] backing off"`) || strings.Contains(got, "noise") {
		t.Errorf("log = %q", got)
	}
	if _, lvl := NSQLogger(NewLogger(&buf, "", slog.LevelDebug)); lvl != nsq.LogLevelDebug {
		t.Errorf("go-nsq level at debug = %v, want debug", lvl)
	}
	if _, lvl := NSQLogger(NewLogger(&buf, "", slog.LevelError)); lvl != nsq.LogLevelError {
		t.Errorf("go-nsq level at error = %v, want error", lvl)
	}
}

func TestMode(t *testing.T) {
	var m Mode
	for i, name := range []string{"round-robin", "hostpool", "epsilon-greedy"} {
		if err := m.Set(name); err != nil || m != Mode(i) || m.String() != name {
			t.Errorf("Set(%q) = %v, mode %v", name, err, m)
		}
	}
	if err := m.Set("all"); err == nil {
		t.Errorf("Set(all) = nil, want an error")
	}
}

func picks(p *Pool, n int) []int {
	var s []int
	for range n {
		s = append(s, p.Pick())
	}
	return s
}

func TestPool(t *testing.T) {
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }

	rr := NewPool(RoundRobin, 3)
	rr.Mark(1, 0, errors.New("down")) // ignored: round-robin takes every destination
	if got := picks(rr, 6); !slices.Equal(got, []int{0, 1, 2, 0, 1, 2}) {
		t.Errorf("round-robin picks %v", got)
	}

	hp := NewPool(HostPool, 3)
	hp.now = clock
	if got := picks(hp, 3); !slices.Equal(got, []int{0, 1, 2}) {
		t.Errorf("hostpool picks %v, want 0 1 2", got)
	}
	hp.Mark(1, 0, errors.New("down"))
	if got := picks(hp, 4); !slices.Equal(got, []int{0, 2, 0, 2}) {
		t.Errorf("hostpool with 1 down picks %v, want 0 2 0 2", got)
	}
	now = now.Add(31 * time.Second) // retry after 30s
	if got := picks(hp, 3); !slices.Contains(got, 1) {
		t.Errorf("hostpool after 31s picks %v, want 1 retried", got)
	}
	hp.Mark(1, 0, errors.New("still down")) // next retry after 60s
	now = now.Add(31 * time.Second)
	if got := picks(hp, 4); slices.Contains(got, 1) {
		t.Errorf("hostpool 31s after a second failure picks %v, want 1 still left out", got)
	}
	hp.Mark(0, 0, errors.New("down"))
	hp.Mark(2, 0, errors.New("down"))
	if got := picks(hp, 3); !slices.Equal(slices.Sorted(slices.Values(got)), []int{0, 1, 2}) {
		t.Errorf("hostpool with all down picks %v, want every destination tried again", got)
	}

	eg := NewPool(EpsilonGreedy, 3)
	eg.now = clock
	eg.Mark(0, 50*time.Millisecond, nil)
	eg.Mark(1, 5*time.Millisecond, nil)
	eg.Mark(2, 80*time.Millisecond, nil)
	counts := map[int]int{}
	for _, i := range picks(eg, 1000) {
		counts[i]++
	}
	if counts[1] < 800 {
		t.Errorf("epsilon-greedy picks %v, want the fastest (1) most of the time", counts)
	}
	if counts[0]+counts[2] == 0 {
		t.Errorf("epsilon-greedy never explored: %v", counts)
	}
}

func TestTimings(t *testing.T) {
	var buf bytes.Buffer
	tm := NewTimings(NewLogger(&buf, "", slog.LevelInfo), "dest1", 3)
	start := time.Now()
	for range 7 {
		tm.Add(start)
	}
	if got := strings.Count(buf.String(), "msg=status dest=dest1"); got != 2 {
		t.Errorf("%d status lines after 7 requests every 3, want 2:\n%s", got, buf.String())
	}
	if !strings.Contains(buf.String(), "requests=6 window=3") {
		t.Errorf("second line should count 6 requests:\n%s", buf.String())
	}
	NewTimings(nil, "off", 0).Add(start) // disabled: must not log or panic
}
