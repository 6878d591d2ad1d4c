package main

import (
	"bytes"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/toolflags/tooltest"
)

func TestFlags(t *testing.T) {
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{"help", []string{"-h"}, 0, `(?s)^Usage: to_nsq .*\n  -delimiter byte\n.*\(default "\\n"\)`, `^$`},
		{"version", []string{"--version"}, 0, `^to_nsq v1\.3\.0 \(nsqx `, `^$`},
		{"no topic", []string{"--nsqd-tcp-address=x:1"}, 2, `^$`, `--topic required`},
		{"bad topic", []string{"--topic=a/b", "--nsqd-tcp-address=x:1"}, 2, `^$`, `not a valid topic name`},
		{"no nsqd", []string{"--topic=a"}, 2, `^$`, `--nsqd-tcp-address required`},
		{"long delimiter", []string{"--topic=a", "--nsqd-tcp-address=x:1", "--delimiter=ab"}, 2, `^$`, `single byte`},
		{"negative rate", []string{"--topic=a", "--nsqd-tcp-address=x:1", "--rate=-1"}, 2, `^$`, `--rate`},
		{"bad producer-opt", []string{"--producer-opt=max_in_flight,x"}, 2, `^$`, `producer-opt`},
		{"unknown flag", []string{"--lookupd-http-address=x"}, 2, `^$`, `not defined`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := tooltest.Exec(t, run, nil, tt.args...)
			if code != tt.code {
				t.Errorf("run(%q) = %d, want %d; stderr:\n%s", tt.args, code, tt.code, stderr)
			}
			if !regexp.MustCompile(tt.stdout).MatchString(stdout) {
				t.Errorf("run(%q) stdout = %q, want match for %q", tt.args, stdout, tt.stdout)
			}
			if !regexp.MustCompile(tt.stderr).MatchString(stderr) {
				t.Errorf("run(%q) stderr = %q, want match for %q", tt.args, stderr, tt.stderr)
			}
		})
	}
}

func strs(bs [][]byte) []string {
	var s []string
	for _, b := range bs {
		s = append(s, string(b))
	}
	return s
}

// TestPublish checks the splitting of stdin: empty records are skipped and
// a last record without a delimiter is published whole.
func TestPublish(t *testing.T) {
	n := tooltest.StartNSQD(t)
	tests := []struct {
		name  string
		delim string
		input string
		want  []string
	}{
		{"lines", "\n", "one\ntwo\n\nthree \t\r\n\xff\x00\nlast", []string{"one", "two", "three \t\r", "\xff\x00", "last"}},
		{"comma", ",", "a,b\nc,,d,", []string{"a", "b\nc", "d"}},
		{"nul", "\x00", "x\x00y\x00", []string{"x", "y"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			topic := fmt.Sprintf("pub%d", i)
			tooltest.CreateChannel(t, n.TCPAddr, topic, "c")
			code, _, stderr := tooltest.Exec(t, run, strings.NewReader(tt.input),
				"--topic="+topic, "--nsqd-tcp-address="+n.TCPAddr, "--delimiter="+tt.delim)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			got := strs(tooltest.Consume(t, n.TCPAddr, topic, "c", len(tt.want)))
			if !slices.Equal(got, tt.want) {
				t.Errorf("published %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAllNSQDs: by default, as NSQ's to_nsq, every nsqd gets every record,
// and an nsqd that is down fails the run.
func TestAllNSQDs(t *testing.T) {
	a, b := tooltest.StartNSQD(t), tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, a.TCPAddr, "all", "c")
	tooltest.CreateChannel(t, b.TCPAddr, "all", "c")
	input := "1\n2\n3\n"
	code, _, stderr := tooltest.Exec(t, run, strings.NewReader(input),
		"--topic=all", "--nsqd-tcp-address="+a.TCPAddr, "--nsqd-tcp-address="+b.TCPAddr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	for _, n := range []string{a.TCPAddr, b.TCPAddr} {
		got := strs(tooltest.Consume(t, n, "all", "c", 3))
		slices.Sort(got)
		if want := []string{"1", "2", "3"}; !slices.Equal(got, want) {
			t.Errorf("nsqd %s got %q, want %q", n, got, want)
		}
	}
	code, _, stderr = tooltest.Exec(t, run, strings.NewReader(input),
		"--topic=all", "--nsqd-tcp-address="+deadAddr(t), "--nsqd-tcp-address="+a.TCPAddr)
	if code != 1 || !strings.Contains(stderr, "publish to") {
		t.Errorf("with a dead nsqd: exit %d, stderr %q; want 1 and the publish error", code, stderr)
	}
	code, _, stderr = tooltest.Exec(t, run, strings.NewReader(input), "--topic=all", "--mode=bogus", "--nsqd-tcp-address="+a.TCPAddr)
	if code != 2 {
		t.Errorf("--mode=bogus: exit %d, stderr %q; want 2", code, stderr)
	}
}

// TestRoundRobin spreads records over two nsqds, and skips an nsqd that
// is down.
func TestRoundRobin(t *testing.T) {
	a, b := tooltest.StartNSQD(t), tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, a.TCPAddr, "rr", "c")
	tooltest.CreateChannel(t, b.TCPAddr, "rr", "c")
	input := "1\n2\n3\n4\n5\n6\n"
	code, _, stderr := tooltest.Exec(t, run, strings.NewReader(input), "--mode=round-robin",
		"--topic=rr", "--nsqd-tcp-address="+a.TCPAddr, "--nsqd-tcp-address="+b.TCPAddr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	gotA := strs(tooltest.Consume(t, a.TCPAddr, "rr", "c", 3))
	gotB := strs(tooltest.Consume(t, b.TCPAddr, "rr", "c", 3))
	if !slices.Equal(gotA, []string{"1", "3", "5"}) || !slices.Equal(gotB, []string{"2", "4", "6"}) {
		t.Errorf("nsqd A got %q, B got %q; want 1 3 5 and 2 4 6", gotA, gotB)
	}

	// A dead nsqd in the list: every record still arrives, on the live one.
	dead := deadAddr(t)
	code, _, stderr = tooltest.Exec(t, run, strings.NewReader(input), "--mode=round-robin",
		"--topic=rr", "--nsqd-tcp-address="+dead, "--nsqd-tcp-address="+a.TCPAddr)
	if code != 0 {
		t.Fatalf("with a dead nsqd: exit %d: %s", code, stderr)
	}
	got := strs(tooltest.Consume(t, a.TCPAddr, "rr", "c", 6))
	slices.Sort(got)
	if want := []string{"1", "2", "3", "4", "5", "6"}; !slices.Equal(got, want) {
		t.Errorf("with a dead nsqd got %q, want %q", got, want)
	}

	// Only dead nsqds: exit 1 with the reason.
	code, _, stderr = tooltest.Exec(t, run, strings.NewReader(input), "--topic=rr", "--nsqd-tcp-address="+dead)
	if code != 1 || !strings.Contains(stderr, "publish to") {
		t.Errorf("with no live nsqd: exit %d, stderr %q; want 1 and the publish error", code, stderr)
	}
}

// deadAddr is a loopback address nothing listens on.
func deadAddr(t *testing.T) string {
	n := tooltest.StartNSQD(t)
	addr := n.TCPAddr
	n.Stop(t)
	return addr
}

// TestRate checks that --rate spaces the messages out.
func TestRate(t *testing.T) {
	n := tooltest.StartNSQD(t)
	start := time.Now()
	code, _, stderr := tooltest.Exec(t, run, strings.NewReader(strings.Repeat("x\n", 11)),
		"--topic=rate", "--nsqd-tcp-address="+n.TCPAddr, "--rate=20")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	// 11 messages at 20/s: at least 10 gaps of 50ms.
	if d := time.Since(start); d < 450*time.Millisecond {
		t.Errorf("11 messages at --rate=20 took %v, want at least 500ms", d)
	}
}

// TestStop cancels a to_nsq whose stdin stays open: what it read is
// published and it exits 0.
func TestStop(t *testing.T) {
	n := tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, n.TCPAddr, "stop", "c")
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	r := tooltest.Start(t, run, pr, "--topic=stop", "--nsqd-tcp-address="+n.TCPAddr)
	if _, err := pw.Write([]byte("a\nb\n")); err != nil {
		t.Fatal(err)
	}
	got := strs(tooltest.Consume(t, n.TCPAddr, "stop", "c", 2))
	if !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("got %q, want [a b]", got)
	}
	if code := r.Stop(t); code != 0 {
		t.Errorf("exit %d after stop, want 0", code)
	}
}

// TestLarge publishes more records than the acknowledgement window.
func TestLarge(t *testing.T) {
	n := tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, n.TCPAddr, "large", "c")
	var in bytes.Buffer
	var want []string
	for i := range 3000 {
		s := fmt.Sprintf("record-%05d-%s", i, strings.Repeat("z", i%100))
		want = append(want, s)
		in.WriteString(s + "\n")
	}
	code, _, stderr := tooltest.Exec(t, run, &in, "--topic=large", "--nsqd-tcp-address="+n.TCPAddr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	got := strs(tooltest.Consume(t, n.TCPAddr, "large", "c", len(want)))
	if !slices.Equal(got, want) {
		t.Errorf("got %d records, want %d in order", len(got), len(want))
	}
}
