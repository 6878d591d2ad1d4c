package compat

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/nsqlookupd"
)

// need skips (or, under CI=true, fails) when a prerequisite is missing.
func need(t *testing.T, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is missing (CI installs it in .ci/run)", what)
	}
	t.Skipf("%s is missing; run: (cd internal/compat/nsqjs && npm ci)", what)
}

// TestNSQJS: nsqjs's Writer publishes (PUB, MPUB, DPUB) and its Reader
// consumes every message, over a plain connection, snappy and deflate.
func TestNSQJS(t *testing.T) {
	node, err := exec.LookPath("node")
	need(t, err == nil, "node")
	_, err = os.Stat(filepath.Join("nsqjs", "node_modules", "nsqjs"))
	need(t, err == nil, "the nsqjs package")

	n := nsqtest.StartNSQD(t, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "check.js", n.TCPAddr)
	cmd.Dir = "nsqjs"
	out, err := cmd.CombinedOutput()
	t.Logf("nsqjs:\n%s", out)
	if err != nil {
		t.Fatalf("nsqjs check failed: %v", err)
	}
}

// TestNSQJSLookupd: an nsqjs Reader finds the producer of a topic through
// our nsqlookupd (lookupdHTTPAddresses) and receives its messages.
func TestNSQJSLookupd(t *testing.T) {
	node, err := exec.LookPath("node")
	need(t, err == nil, "node")
	_, err = os.Stat(filepath.Join("nsqjs", "node_modules", "nsqjs"))
	need(t, err == nil, "the nsqjs package")

	lcfg := nsqlookupd.DefaultConfig()
	lcfg.TCPAddress, lcfg.HTTPAddress, lcfg.BroadcastAddress = "127.0.0.1:0", "127.0.0.1:0", "127.0.0.1"
	lookupd, err := nsqlookupd.New(lcfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- lookupd.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	n := nsqtest.StartNSQD(t, func(c *nsqd.Config) { c.LookupdTCPAddrs = []string{lookupd.TCPAddr().String()} })

	run, stop := context.WithTimeout(context.Background(), 60*time.Second)
	defer stop()
	cmd := exec.CommandContext(run, node, "lookup.js", n.TCPAddr, lookupd.HTTPAddr().String())
	cmd.Dir = "nsqjs"
	out, err := cmd.CombinedOutput()
	t.Logf("nsqjs:\n%s", out)
	if err != nil {
		t.Fatalf("nsqjs via lookupd failed: %v", err)
	}
}
