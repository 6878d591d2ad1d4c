package cliconfig

import (
	"strconv"
	"strings"
	"time"
)

// StringList is a repeatable string flag; a value may also hold several
// comma-separated entries.
type StringList struct{ V *[]string }

func (s StringList) String() string {
	if s.V == nil {
		return ""
	}
	return strings.Join(*s.V, ",")
}

// Set appends one or more comma-separated values.
func (s StringList) Set(v string) error {
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			*s.V = append(*s.V, p)
		}
	}
	return nil
}

// Duration is a time.Duration flag that also accepts a bare integer of
// milliseconds, which is how NSQ's config loader reads an integer TOML value
// for a duration option (msg_timeout = 60000 is one minute).
type Duration struct{ V *time.Duration }

func (d Duration) String() string {
	if d.V == nil {
		return "0s"
	}
	return d.V.String()
}

// Set parses a Go duration ("250ms") or an integer of milliseconds.
func (d Duration) Set(v string) error {
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		*d.V = time.Duration(n) * time.Millisecond
		return nil
	}
	x, err := time.ParseDuration(v)
	if err != nil {
		return err
	}
	*d.V = x
	return nil
}
