//go:build unix

package main

import (
	"io"
	"os"
	"regexp"
	"syscall"
	"testing"
	"time"
)

// TestRunSignal runs the real entry point and stops it with SIGTERM, as an
// init system would: it must shut down and return 0.
func TestRunSignal(t *testing.T) {
	stderr := &syncBuffer{}
	done := make(chan int, 1)
	args := []string{"--http-address=127.0.0.1:0", "--nsqd-http-address=127.0.0.1:1"}
	go func() { done <- run(args, io.Discard, stderr) }() // ended by the signal below
	// run installs its signal handler before the server logs that it
	// listens, so the signal cannot kill the test binary.
	waitForLog(t, stderr, regexp.MustCompile(`msg="HTTP listening" addr=(\S+)`))
	if err := syscall.Kill(os.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case code := <-done:
		if code != 0 {
			t.Errorf("run = %d after SIGTERM, want 0; log:\n%s", code, stderr.String())
		}
	case <-time.After(testTimeout):
		t.Fatal("run did not return after SIGTERM")
	}
}
