package logging

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

func TestParseLevel(t *testing.T) {
	tests := []struct {
		in   string
		want slog.Level
		num  int
	}{
		{"debug", slog.LevelDebug, 1},
		{"INFO", slog.LevelInfo, 2},
		{"Warn", slog.LevelWarn, 3},
		{"error", slog.LevelError, 4},
		{"fatal", LevelFatal, 5},
	}
	for _, tt := range tests {
		got, err := ParseLevel(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseLevel(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
		if n := LevelNumber(got); n != tt.num {
			t.Errorf("LevelNumber(%v) = %d, want %d", got, n, tt.num)
		}
		if name := LevelName(got); name != strings.ToLower(tt.in) {
			t.Errorf("LevelName(%v) = %q, want %q", got, name, strings.ToLower(tt.in))
		}
	}
	for _, bad := range []string{"", "loud", "warning", "trace"} {
		if _, err := ParseLevel(bad); err == nil {
			t.Errorf("ParseLevel(%q) succeeded, want an error", bad)
		}
	}
}

func TestParseFormat(t *testing.T) {
	for in, want := range map[string]string{"text": "text", "JSON": "json", "": "text"} {
		if got, err := ParseFormat(in); err != nil || got != want {
			t.Errorf("ParseFormat(%q) = %q, %v, want %q", in, got, err, want)
		}
	}
	if _, err := ParseFormat("xml"); err == nil {
		t.Errorf("ParseFormat(xml) succeeded")
	}
	if _, err := New(&bytes.Buffer{}, Options{Format: "xml"}); err == nil {
		t.Errorf("New with format xml succeeded")
	}
}

func TestFlags(t *testing.T) {
	level, format := slog.LevelInfo, FormatText
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(&bytes.Buffer{})
	fs.Var(LevelFlag{&level}, "log-level", "")
	fs.Var(FormatFlag{&format}, "log-format", "")
	if d := fs.Lookup("log-level").DefValue; d != "info" {
		t.Errorf("--log-level default = %q, want info", d)
	}
	if err := fs.Parse([]string{"--log-level=FATAL", "--log-format=json"}); err != nil {
		t.Fatal(err)
	}
	if level != LevelFatal || format != FormatJSON {
		t.Errorf("parsed level, format = %v, %q", level, format)
	}
	if err := fs.Parse([]string{"--log-level=loud"}); err == nil {
		t.Errorf("--log-level=loud accepted")
	}
}

// TestText checks the text format: NSQ's prefix at the start of every
// line, slog's key=value after it, FATAL named.
func TestText(t *testing.T) {
	var buf bytes.Buffer
	log, err := New(&buf, Options{Level: slog.LevelWarn, Prefix: "[nsqd] "})
	if err != nil {
		t.Fatal(err)
	}
	log.Info("hidden")
	log.Warn("shown", "topic", "t1")
	log.Log(context.Background(), LevelFatal, "fatal", "err", errors.New("boom"))
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	want := []string{"level=WARN msg=shown topic=t1", "level=FATAL msg=fatal err=boom"}
	if len(lines) != len(want) {
		t.Fatalf("logged %q, want %d lines", buf.String(), len(want))
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], "[nsqd] time=") || !strings.HasSuffix(lines[i], w) {
			t.Errorf("line %d = %q, want \"[nsqd] time=…%s\"", i, lines[i], w)
		}
	}
}

// TestJSON parses every line as one JSON object with the stable keys.
func TestJSON(t *testing.T) {
	var buf bytes.Buffer
	lv := new(slog.LevelVar)
	log, err := New(&buf, Options{Level: lv, Prefix: "[nsqlookupd] ", Format: FormatJSON})
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	lv.Set(slog.LevelDebug) // as PUT /config/log_level does
	log.With("client", "1.2.3.4:5").Debug("sub", "topic", "t", "channel", "c")
	log.Error("failed", "remote_addr", "1.2.3.4:6", "err", errors.New("boom"))
	log.Log(context.Background(), LevelFatal, "dying")

	want := []map[string]any{
		{"level": "DEBUG", "msg": "sub", "prefix": "[nsqlookupd]", "client": "1.2.3.4:5", "topic": "t", "channel": "c"},
		{"level": "ERROR", "msg": "failed", "prefix": "[nsqlookupd]", "remote_addr": "1.2.3.4:6", "err": "boom"},
		{"level": "FATAL", "msg": "dying", "prefix": "[nsqlookupd]"},
	}
	lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
	if len(lines) != len(want) {
		t.Fatalf("logged %d lines, want %d:\n%s", len(lines), len(want), buf.String())
	}
	for i, line := range lines {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %d %q: %v", i, line, err)
		}
		if _, ok := got["time"]; !ok {
			t.Errorf("line %d has no time", i)
		}
		delete(got, "time")
		if len(got) != len(want[i]) {
			t.Errorf("line %d = %v, want %v", i, got, want[i])
		}
		for k, v := range want[i] {
			if got[k] != v {
				t.Errorf("line %d %s = %v, want %v", i, k, got[k], v)
			}
		}
	}
}

// TestConcurrentLines logs from many goroutines into one unsynchronised
// buffer: every line must come out whole.
func TestConcurrentLines(t *testing.T) {
	for _, format := range []string{FormatText, FormatJSON} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			log, err := New(&buf, Options{Prefix: "[p] ", Format: format})
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for i := range 8 {
				wg.Go(func() {
					l := log.With("worker", i)
					for j := range 50 {
						l.Info("msg", "j", j)
					}
				})
			}
			wg.Wait()
			lines := strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n")
			if len(lines) != 8*50 {
				t.Fatalf("got %d lines, want %d", len(lines), 8*50)
			}
			for _, l := range lines {
				if format == FormatJSON {
					if !json.Valid([]byte(l)) {
						t.Fatalf("line %q is not JSON", l)
					}
				} else if !strings.HasPrefix(l, "[p] time=") || strings.Count(l, "[p]") != 1 {
					t.Fatalf("line %q is not one prefixed record", l)
				}
			}
		})
	}
}
