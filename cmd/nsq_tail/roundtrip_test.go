package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/toolflags/tooltest"
)

var (
	binDir    string // holds binaries built by buildTool; removed by TestMain
	buildOnce sync.Map
)

func TestMain(m *testing.M) {
	var err error
	if binDir, err = os.MkdirTemp("", "nsq_tail_test"); err != nil {
		panic(err)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// buildTool builds cmd/<name> once per test binary and returns its path.
func buildTool(t *testing.T, name string) string {
	t.Helper()
	v, _ := buildOnce.LoadOrStore(name, sync.OnceValues(func() (string, error) {
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = "/usr/local/go/bin/go"
		}
		bin := filepath.Join(binDir, name)
		out, err := exec.Command(goBin, "build", "-o", bin, "github.com/nsqx/nsqx/cmd/"+name).CombinedOutput()
		if err != nil {
			return "", fmt.Errorf("go build %s: %v\n%s", name, err, out)
		}
		return bin, nil
	}))
	bin, err := v.(func() (string, error))()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// TestRoundTrip pipes data through the real to_nsq binary and reads it back
// with nsq_tail -n: the bytes must come out as they went in.
func TestRoundTrip(t *testing.T) {
	toNSQ := buildTool(t, "to_nsq")
	n := tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, n.TCPAddr, "roundtrip", "c")

	var in bytes.Buffer
	const count = 1000
	for i := range count {
		fmt.Fprintf(&in, "%d\t\r \x00\x01\xfe\xff é 😀 ", i)
		in.Write(bytes.Repeat([]byte{byte('a' + i%26)}, i*37%4096))
		in.WriteByte('\n')
	}
	in.Write(bytes.Repeat([]byte("big"), 200_000)) // a 600 KB record
	in.WriteByte('\n')
	want := bytes.Clone(in.Bytes())

	cmd := exec.Command(toNSQ, "--topic=roundtrip", "--nsqd-tcp-address="+n.TCPAddr)
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("to_nsq: %v\n%s", err, stderr.Bytes())
	}

	code, stdout, _ := tooltest.Exec(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr,
		"--topic=roundtrip", "--channel=c", "-n="+strconv.Itoa(count+1))
	if code != 0 {
		t.Fatalf("nsq_tail exit %d", code)
	}
	if !bytes.Equal([]byte(stdout), want) {
		t.Errorf("nsq_tail printed %d bytes, want the %d bytes given to to_nsq", len(stdout), len(want))
	}
}

// TestSignal sends SIGTERM and SIGINT to the real to_nsq binary while its
// stdin is open: it must publish what it read and exit 0.
func TestSignal(t *testing.T) {
	toNSQ := buildTool(t, "to_nsq")
	n := tooltest.StartNSQD(t)
	for i, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			topic := fmt.Sprintf("signal%d", i)
			tooltest.CreateChannel(t, n.TCPAddr, topic, "c")
			cmd := exec.Command(toNSQ, "--topic="+topic, "--nsqd-tcp-address="+n.TCPAddr)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			defer stdin.Close()
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			if _, err := stdin.Write([]byte("before signal\n")); err != nil {
				t.Fatal(err)
			}
			// Seeing the message proves the handler is installed and the
			// record was read.
			got := tooltest.Consume(t, n.TCPAddr, topic, "c", 1)
			if len(got) != 1 || string(got[0]) != "before signal" {
				t.Fatalf("consumed %q", got)
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("to_nsq after %v: %v (want exit 0)\n%s", sig, err, stderr.Bytes())
				}
			case <-time.After(tooltest.Timeout):
				cmd.Process.Kill()
				t.Fatalf("to_nsq did not exit after %v", sig)
			}
		})
	}
}
