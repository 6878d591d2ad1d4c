package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer the daemon writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// unixClient is an HTTP client that dials the unix socket sock.
func unixClient(sock string) *http.Client {
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

func do(t *testing.T, c *http.Client, method, path, body string) {
	t.Helper()
	req, err := http.NewRequest(method, "http://nsqd"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("%s %s = %d %s", method, path, resp.StatusCode, b)
	}
}

// TestLogJSON runs nsqd with --log-format=json at --log-level=warn, turns
// the level down to debug with PUT /config/log_level, and reads stderr back
// line by line: each line one JSON object with the stable keys, the info
// events logged only once the level allows them.
func TestLogJSON(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "http.sock")
	args := []string{"--tcp-address=127.0.0.1:0", "--http-address=" + sock, "--https-address=",
		"--data-path=" + dir, "--log-format=json", "--log-level=warn", "--log-prefix=[nsqd] "}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stderr syncBuffer
	done := make(chan int, 1)
	go func() { done <- serve(ctx, args, nil, io.Discard, &stderr) }()

	c := unixClient(sock)
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := c.Get("http://nsqd/ping")
		if err == nil {
			resp.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nsqd did not answer /ping: %v; stderr:\n%s", err, stderr.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	do(t, c, "POST", "/topic/create?topic=quiet", "")
	do(t, c, "PUT", "/config/log_level", "debug")
	do(t, c, "POST", "/topic/create?topic=loud", "")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve = %d; stderr:\n%s", code, stderr.String())
	}

	var records []map[string]any
	for line := range strings.SplitSeq(strings.TrimSuffix(stderr.String(), "\n"), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not one JSON object: %v", line, err)
		}
		for _, k := range []string{"time", "level", "msg", "prefix"} {
			if _, ok := rec[k]; !ok {
				t.Errorf("log line %q has no %q", line, k)
			}
		}
		if rec["prefix"] != "[nsqd]" {
			t.Errorf("prefix = %v, want [nsqd]", rec["prefix"])
		}
		records = append(records, rec)
	}
	find := func(msg string, attrs map[string]any) bool {
		for _, r := range records {
			if r["msg"] != msg {
				continue
			}
			match := true
			for k, v := range attrs {
				if r[k] != v {
					match = false
				}
			}
			if match {
				return true
			}
		}
		return false
	}
	if find("topic created", map[string]any{"topic": "quiet"}) {
		t.Errorf("an info event was logged at --log-level=warn")
	}
	if !find("topic created", map[string]any{"topic": "loud", "level": "INFO"}) {
		t.Errorf("no info event after PUT /config/log_level debug; records: %v", records)
	}
	if !find("stopped", nil) {
		t.Errorf("no \"stopped\" record")
	}
	for _, r := range records {
		if r["msg"] == "http request" {
			for _, k := range []string{"status", "method", "uri", "remote_addr"} {
				if _, ok := r[k]; !ok {
					t.Errorf("http request record %v has no %q", r, k)
				}
			}
		}
	}
}
