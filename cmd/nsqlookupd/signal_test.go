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
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			stderr := &syncBuffer{}
			done := make(chan int, 1)
			args := []string{"--tcp-address=127.0.0.1:0", "--http-address=127.0.0.1:0"}
			go func() { done <- run(args, io.Discard, stderr) }() // ended by the signal below

			// run installs its signal handler before the server logs that
			// it listens, so the signal cannot kill the test binary.
			httpAddr := waitForLog(t, stderr, regexp.MustCompile(`msg="HTTP listening" addr=(\S+)`))
			tcpAddr := waitForLog(t, stderr, regexp.MustCompile(`msg="TCP listening" addr=(\S+)`))
			checkServing(t, httpAddr, tcpAddr)

			if err := syscall.Kill(os.Getpid(), sig); err != nil {
				t.Fatal(err)
			}
			select {
			case code := <-done:
				if code != 0 {
					t.Errorf("run = %d after %v, want 0; log:\n%s", code, sig, stderr.String())
				}
			case <-time.After(testTimeout):
				t.Fatalf("run did not return after %v", sig)
			}
		})
	}
}
