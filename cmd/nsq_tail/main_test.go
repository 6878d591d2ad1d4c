package main

import (
	"bytes"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nsqx/nsqx/internal/nsqtest"
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
		{"help", []string{"-h"}, 0, `(?s)^Usage: nsq_tail .*\n  -max-in-flight int\n.*\(default 200\)`, `^$`},
		{"version", []string{"--version"}, 0, `^nsq_tail v1\.3\.0 \(nsqx `, `^$`},
		{"no source", []string{"--topic=a"}, 2, `^$`, `--nsqd-tcp-address or --lookupd-http-address required`},
		{"both sources", []string{"--topic=a", "--nsqd-tcp-address=x:1", "--lookupd-http-address=y:2"}, 2, `^$`, `not both`},
		{"no topic", []string{"--nsqd-tcp-address=127.0.0.1:1"}, 2, `^$`, `--topic required`},
		{"unknown flag", []string{"--nope"}, 2, `^$`, `flag provided but not defined: -nope\nRun 'nsq_tail -h' for usage`},
		{"positional", []string{"--topic=a", "--nsqd-tcp-address=x:1", "extra"}, 2, `^$`, `unexpected argument "extra"`},
		{"bad consumer-opt", []string{"--consumer-opt=nonsense,1"}, 2, `^$`, `invalid value "nonsense,1" for flag -consumer-opt`},
		{"bad topic", []string{"--topic=a b", "--nsqd-tcp-address=127.0.0.1:1"}, 2, `^$`, `(?i)topic`},
		{"negative n", []string{"--topic=a", "--nsqd-tcp-address=x:1", "-n=-1"}, 2, `^$`, `-n must not be negative`},
		{"unreachable", []string{"--topic=a", "--nsqd-tcp-address=127.0.0.1:1"}, 1, `^$`, `connect to nsqd`},
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

// TestTailN prints exactly -n messages, in order, and leaves the rest on
// the channel.
func TestTailN(t *testing.T) {
	n := tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, n.TCPAddr, "tail_n", "c")
	var bodies [][]byte
	var want bytes.Buffer
	for i := range 30 {
		b := fmt.Appendf(nil, "message %d \x00\t\xff", i)
		bodies = append(bodies, b)
		if i < 20 {
			want.Write(b)
			want.WriteByte('\n')
		}
	}
	tooltest.Publish(t, n.TCPAddr, "tail_n", bodies...)

	code, stdout, _ := tooltest.Exec(t, run, nil,
		"--nsqd-tcp-address="+n.TCPAddr, "--topic=tail_n", "--channel=c", "-n=20", "--max-in-flight=1")
	if code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	if stdout != want.String() {
		t.Errorf("stdout =\n%q\nwant\n%q", stdout, want.String())
	}
	// The 10 not printed are still there for the next consumer.
	rest := tooltest.Consume(t, n.TCPAddr, "tail_n", "c", 10)
	for i, b := range rest {
		if !bytes.Equal(b, bodies[20+i]) {
			t.Errorf("remaining message %d = %q, want %q", i, b, bodies[20+i])
		}
	}
}

// TestPrintTopicsViaLookupd tails two topics found through nsqlookupd with
// --print-topic and the default ephemeral channel.
func TestPrintTopicsViaLookupd(t *testing.T) {
	l := tooltest.StartLookupd(t)
	n := tooltest.StartNSQD(t, l.TCPAddr)
	for _, topic := range []string{"tail_a", "tail_b"} {
		tooltest.CreateChannel(t, n.TCPAddr, topic, "other")
		l.WaitLookup(t, topic)
	}

	r := tooltest.Start(t, run, nil, "--lookupd-http-address="+l.HTTPAddr,
		"--topic=tail_a", "--topic=tail_b", "--print-topic", "-n=4")
	ephemeral := regexp.MustCompile(`^tail[0-9]{6}#ephemeral$`)
	ca := l.WaitChannel(t, "tail_a", ephemeral)
	cb := l.WaitChannel(t, "tail_b", ephemeral)
	if ca != cb {
		t.Errorf("channels %q and %q, want one name for both topics", ca, cb)
	}
	tooltest.Publish(t, n.TCPAddr, "tail_a", []byte("a1"), []byte("a2"))
	tooltest.Publish(t, n.TCPAddr, "tail_b", []byte("b1"), []byte("b2"))
	if code := r.Wait(t); code != 0 {
		t.Fatalf("exit code %d, want 0", code)
	}
	lines := strings.Split(strings.TrimSuffix(r.Stdout.String(), "\n"), "\n")
	slices.Sort(lines)
	want := []string{"tail_a | a1", "tail_a | a2", "tail_b | b1", "tail_b | b2"}
	if !slices.Equal(lines, want) {
		t.Errorf("lines = %q, want %q (in any order)", lines, want)
	}
}

// TestStopWithoutLimit runs until cancelled (SIGINT) and exits 0, having
// printed what it took.
func TestStopWithoutLimit(t *testing.T) {
	n := tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, n.TCPAddr, "tail_stop", "c")
	tooltest.Publish(t, n.TCPAddr, "tail_stop", []byte("one"), []byte("two"))
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=tail_stop", "--channel=c")
	nsqtest.Eventually(t, tooltest.Timeout, "two lines", func() bool { return r.Stdout.String() == "one\ntwo\n" })
	if code := r.Stop(t); code != 0 {
		t.Errorf("exit code after stop = %d, want 0", code)
	}
}
