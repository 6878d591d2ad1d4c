// Package logging builds the daemons' slog loggers from NSQ's logging
// flags: --log-level (debug, info, warn, error, fatal), --log-prefix, and
// nsqx's --log-format (text, NSQ-like lines for people, or json, one
// object per line for log shippers).
//
// Every record is one line, written with a single Write. Messages are
// constant; details are attributes under stable keys: topic, channel,
// client, remote_addr, err.
//
// The level is a *slog.LevelVar so a daemon can change it while running
// (PUT /config/log_level). Loggers hold no goroutines.
package logging

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
)

// LevelFatal is NSQ's "fatal" level. slog has none; it sits above Error,
// so that setting it silences everything but fatal records.
const LevelFatal = slog.LevelError + 4

// Formats of --log-format.
const (
	FormatText = "text"
	FormatJSON = "json"
)

// levels are NSQ's level names with NSQ's numbers (what GET
// /config/log_level reports: NSQ marshals its level type as a number).
var levels = []struct {
	name  string
	level slog.Level
	num   int
}{
	{"debug", slog.LevelDebug, 1},
	{"info", slog.LevelInfo, 2},
	{"warn", slog.LevelWarn, 3},
	{"error", slog.LevelError, 4},
	{"fatal", LevelFatal, 5},
}

// ParseLevel reads one of NSQ's level names, in any case.
func ParseLevel(s string) (slog.Level, error) {
	for _, l := range levels {
		if strings.EqualFold(s, l.name) {
			return l.level, nil
		}
	}
	return 0, fmt.Errorf("unknown log level %q (want debug, info, warn, error or fatal)", s)
}

// LevelName is level's NSQ name, or slog's for a level NSQ does not have.
func LevelName(level slog.Level) string {
	for _, l := range levels {
		if l.level == level {
			return l.name
		}
	}
	return level.String()
}

// LevelNumber is level as NSQ numbers it (1 debug … 5 fatal), rounding a
// level between two of NSQ's down.
func LevelNumber(level slog.Level) int {
	n := 1
	for _, l := range levels {
		if level >= l.level {
			n = l.num
		}
	}
	return n
}

// ParseFormat checks a --log-format value.
func ParseFormat(s string) (string, error) {
	switch f := strings.ToLower(s); f {
	case FormatText, FormatJSON:
		return f, nil
	case "":
		return FormatText, nil
	}
	return "", fmt.Errorf("unknown log format %q (want text or json)", s)
}

// Options configure New.
type Options struct {
	// Level filters records; nil means info. Pass a *slog.LevelVar to
	// change it at run time.
	Level slog.Leveler
	// Prefix starts every text line (NSQ's --log-prefix, e.g. "[nsqd] ").
	// A JSON record carries it, trimmed of spaces, under the key "prefix",
	// so each line stays one JSON object.
	Prefix string
	// Format is FormatText (the default) or FormatJSON.
	Format string
}

// New returns a logger writing one line per record to w.
func New(w io.Writer, opts Options) (*slog.Logger, error) {
	format, err := ParseFormat(opts.Format)
	if err != nil {
		return nil, err
	}
	level := opts.Level
	if level == nil {
		level = slog.LevelInfo
	}
	ho := &slog.HandlerOptions{Level: level, ReplaceAttr: fatalName}
	var h slog.Handler
	switch format {
	case FormatJSON:
		h = slog.NewJSONHandler(&lineWriter{w: w}, ho)
		if p := strings.TrimSpace(opts.Prefix); p != "" {
			h = h.WithAttrs([]slog.Attr{slog.String("prefix", p)})
		}
	default:
		h = slog.NewTextHandler(&lineWriter{w: w, prefix: []byte(opts.Prefix)}, ho)
	}
	return slog.New(h), nil
}

// fatalName prints LevelFatal as FATAL rather than slog's ERROR+4.
func fatalName(groups []string, a slog.Attr) slog.Attr {
	if len(groups) == 0 && a.Key == slog.LevelKey {
		if l, ok := a.Value.Any().(slog.Level); ok && l == LevelFatal {
			a.Value = slog.StringValue("FATAL")
		}
	}
	return a
}

// lineWriter writes each record, prefixed, in one Write to w. slog's
// handlers format a record into one buffer and write it once, so one Write
// is one line; the mutex keeps lines of loggers sharing w whole even when
// w is not safe for concurrent use.
type lineWriter struct {
	w      io.Writer
	prefix []byte

	mu  sync.Mutex
	buf []byte
}

func (lw *lineWriter) Write(b []byte) (int, error) {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	out := b
	if len(lw.prefix) > 0 {
		lw.buf = append(append(lw.buf[:0], lw.prefix...), b...)
		out = lw.buf
	}
	if _, err := lw.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}

// LevelFlag is a --log-level flag.Value over *P.
type LevelFlag struct{ P *slog.Level }

func (f LevelFlag) String() string {
	if f.P == nil {
		return "" // the zero Value, which flag.PrintDefaults probes
	}
	return LevelName(*f.P)
}

func (f LevelFlag) Set(s string) error {
	l, err := ParseLevel(s)
	if err != nil {
		return err
	}
	*f.P = l
	return nil
}

// FormatFlag is a --log-format flag.Value over *P.
type FormatFlag struct{ P *string }

func (f FormatFlag) String() string {
	if f.P == nil {
		return ""
	}
	return *f.P
}

func (f FormatFlag) Set(s string) error {
	v, err := ParseFormat(s)
	if err != nil {
		return err
	}
	*f.P = v
	return nil
}
