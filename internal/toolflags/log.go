package toolflags

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/nsqio/go-nsq"
)

// LevelFatal is NSQ's "fatal" log level, which slog lacks; setting it
// silences everything the tools log.
const LevelFatal = slog.LevelError + 4

var levels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
	"fatal": LevelFatal,
}

// Level is a --log-level flag taking NSQ's level names in any case.
type Level struct{ P *slog.Level }

func (l Level) String() string {
	if l.P == nil {
		return ""
	}
	for name, v := range levels {
		if v == *l.P {
			return name
		}
	}
	return l.P.String()
}

func (l Level) Set(s string) error {
	v, ok := levels[strings.ToLower(s)]
	if !ok {
		return fmt.Errorf("unknown level %q: want debug, info, warn, error or fatal", s)
	}
	*l.P = v
	return nil
}

// NewLogger logs text records at level and above to w, each line starting
// with prefix (which may be empty).
func NewLogger(w io.Writer, prefix string, level slog.Level) *slog.Logger {
	if prefix != "" {
		w = &prefixed{w: w, prefix: prefix}
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}

// prefixed writes prefix before each Write; slog's text handler writes
// each record, one line, in a single Write.
type prefixed struct {
	w      io.Writer
	prefix string

	mu  sync.Mutex // guards buf and keeps lines whole
	buf []byte
}

func (p *prefixed) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(append(p.buf[:0], p.prefix...), b...)
	if _, err := p.w.Write(p.buf); err != nil {
		return 0, err
	}
	return len(b), nil
}

// NSQLogger adapts l to go-nsq's logger and returns the go-nsq level that
// matches l's: warnings and errors by default, go-nsq's chatty info lines
// only when l logs debug. Pass both to SetLogger.
func NSQLogger(l *slog.Logger) (nsqLogger, nsq.LogLevel) {
	lvl := nsq.LogLevelWarning
	switch {
	case l.Enabled(context.Background(), slog.LevelDebug):
		lvl = nsq.LogLevelDebug
	case !l.Enabled(context.Background(), slog.LevelWarn):
		lvl = nsq.LogLevelError
	}
	return nsqLogger{l}, lvl
}

// nsqLogger turns go-nsq's "WRN    1 [topic/channel] text" lines into
// slog records at the matching level.
type nsqLogger struct{ l *slog.Logger }

func (n nsqLogger) Output(_ int, s string) error {
	level := slog.LevelInfo
	switch {
	case strings.HasPrefix(s, "DBG"):
		level = slog.LevelDebug
	case strings.HasPrefix(s, "WRN"):
		level = slog.LevelWarn
	case strings.HasPrefix(s, "ERR"):
		level = slog.LevelError
	}
	if len(s) > 4 {
		s = strings.TrimSpace(s[4:])
	}
	n.l.Log(context.Background(), level, "go-nsq", "line", s)
	return nil
}
