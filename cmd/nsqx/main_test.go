package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/internal/version"
)

// syncBuffer is a bytes.Buffer the daemons' loggers can share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

var (
	nsqdLine    = regexp.MustCompile(`(?m)^  nsqd +tcp (\S+) +http http://(\S+) +data (\S+)$`)
	lookupdLine = regexp.MustCompile(`(?m)^  nsqlookupd +tcp (\S+) +http http://(\S+)$`)
)

// TestDev runs `nsqx dev` on free ports: nsqd takes a publish over HTTP
// and registers the topic with the nsqlookupd it started, and cancelling
// the context stops everything with exit code 0.
func TestDev(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	exited := make(chan int, 1)
	go func() { // ends when ctx is cancelled (below, or by the defer)
		exited <- run(ctx, []string{"dev", "--nsqd-port", "0", "--lookupd-port", "0", "--admin-port", "0", "--data", dir}, &stdout, &stderr)
	}()
	defer func() {
		if t.Failed() {
			t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
		}
	}()

	var nsqd, lookupd []string
	nsqtest.Eventually(t, 10*time.Second, "nsqx dev to report the cluster up", func() bool {
		select {
		case code := <-exited:
			t.Fatalf("nsqx dev exited with %d before the cluster was up", code)
		default:
		}
		nsqd = nsqdLine.FindStringSubmatch(stdout.String())
		lookupd = lookupdLine.FindStringSubmatch(stdout.String())
		return nsqd != nil && lookupd != nil
	})
	nsqdTCP, nsqdHTTP, dataDir, lookupdHTTP := nsqd[1], nsqd[2], nsqd[3], lookupd[2]
	for _, addr := range []string{nsqdTCP, nsqdHTTP, lookupd[1], lookupdHTTP} {
		if strings.HasSuffix(addr, ":0") || !strings.HasPrefix(addr, "127.0.0.1:") {
			t.Errorf("nsqx dev reports listening on %s, want 127.0.0.1 and the port picked", addr)
		}
	}
	if want := filepath.Join(dir, "nsqd"); dataDir != want {
		t.Errorf("nsqd data in %s, want %s", dataDir, want)
	}

	client := &http.Client{Timeout: 5 * time.Second}
	res, err := client.Post("http://"+nsqdHTTP+"/pub?topic=devtest", "", strings.NewReader("hello"))
	if err != nil {
		t.Fatalf("POST /pub: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || string(body) != "OK" {
		t.Fatalf("POST /pub = %d %q, want 200 OK", res.StatusCode, body)
	}
	_, tcpPort, _ := strings.Cut(nsqdTCP, "127.0.0.1:")
	nsqtest.Eventually(t, 10*time.Second, "the topic and nsqd in nsqlookupd's /lookup", func() bool {
		res, err := client.Get("http://" + lookupdHTTP + "/lookup?topic=devtest")
		if err != nil {
			t.Fatalf("GET /lookup: %v", err)
		}
		defer res.Body.Close()
		var r struct {
			Producers []struct {
				TCPPort int `json:"tcp_port"`
			} `json:"producers"`
		}
		if res.StatusCode != http.StatusOK || json.NewDecoder(res.Body).Decode(&r) != nil {
			return false
		}
		return len(r.Producers) == 1 && strconv.Itoa(r.Producers[0].TCPPort) == tcpPort
	})

	cancel()
	select {
	case code := <-exited:
		if code != 0 {
			t.Errorf("nsqx dev exited with %d after cancel, want 0", code)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("nsqx dev still running 5s after cancel")
	}
	if _, err := os.Stat(filepath.Join(dataDir, "nsqd.dat")); err != nil {
		t.Errorf("nsqd metadata not saved at exit: %v", err)
	}
}

// TestDevBadFlags checks that bad flags exit 2 without starting anything.
func TestDevBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"dev", "--nope"},
		{"dev", "--log-level", "loud"},
		{"nope"},
		{},
	} {
		var stdout, stderr syncBuffer
		if code := run(context.Background(), args, &stdout, &stderr); code != 2 {
			t.Errorf("run(%q) = %d, want 2", args, code)
		}
		if stderr.String() == "" {
			t.Errorf("run(%q) wrote nothing to stderr", args)
		}
	}
}

// TestVersion: `nsqx version` names the nsqx release first and the NSQ
// release it is compatible with second.
func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), []string{arg}, &stdout, &stderr); code != 0 {
			t.Fatalf("nsqx %s exited %d: %s", arg, code, stderr.String())
		}
		want := "nsqx " + version.Release + " (NSQ " + version.Compat + " compatible, built w/"
		if got := stdout.String(); !strings.HasPrefix(got, want) {
			t.Errorf("nsqx %s printed %q, want it to start with %q", arg, got, want)
		}
	}
}
