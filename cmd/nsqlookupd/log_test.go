package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
)

// TestLogJSON runs nsqlookupd with --log-format=json until cancelled and
// parses stderr line by line: one JSON object per event, constant
// messages, details under their own keys.
func TestLogJSON(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel() // start, log, stop
	args := []string{"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0", "--log-format=json"}
	var stdout, stderr syncBuffer
	if code := serve(ctx, args, nil, &stdout, &stderr); code != 0 {
		t.Fatalf("serve(%q) = %d; stderr:\n%s", args, code, stderr.String())
	}
	var msgs []string
	for line := range strings.Lines(stderr.String()) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not a JSON object: %v", line, err)
		}
		if rec["prefix"] != "[nsqlookupd]" || rec["level"] == nil || rec["time"] == nil {
			t.Errorf("log line %q lacks prefix, level or time", line)
		}
		if m, _ := rec["msg"].(string); strings.HasSuffix(m, "listening") && rec["addr"] == nil {
			t.Errorf("listening record %q has no addr", line)
		}
		msgs = append(msgs, rec["msg"].(string))
	}
	if want := []string{"TCP listening", "HTTP listening", "stopped"}; strings.Join(msgs, ",") != strings.Join(want, ",") {
		t.Errorf("messages %q, want %q", msgs, want)
	}
}
