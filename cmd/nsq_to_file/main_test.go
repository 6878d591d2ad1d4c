package main

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/internal/toolflags/tooltest"
	"github.com/nsqx/nsqx/nsqd"
)

func TestFlags(t *testing.T) {
	src := "--nsqd-tcp-address=127.0.0.1:1"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{"help", []string{"-h"}, 0, `(?s)^Usage: nsq_to_file .*<REV>.*\n  -channel channel\n.*\(default "nsq_to_file"\).*\n  -datetime-format format\n.*\(default "%Y-%m-%d_%H"\).*\n  -filename-format format\n.*\(default "<TOPIC>.<HOST><REV>.<DATETIME>.log"\).*\n  -gzip-level level\n.*\(default 6\).*\n  -output-dir directory\n.*\(default "/tmp"\).*\n  -sync-interval duration\n.*\(default 30s\).*\n  -topic-refresh duration\n.*\(default 1m0s\)`, `^$`},
		{"version", []string{"--version"}, 0, `^nsq_to_file v1\.3\.0 \(nsqx `, `^$`},
		{"no source", []string{"--topic=t"}, 2, `^$`, `--nsqd-tcp-address or --lookupd-http-address required`},
		{"no topic", []string{src}, 2, `^$`, `--topic or --topic-pattern required`},
		{"pattern without lookupd", []string{src, "--topic-pattern=a"}, 2, `^$`, `--lookupd-http-address must be specified when no --topic specified`},
		{"bad pattern", []string{"--lookupd-http-address=x:1", "--topic-pattern=("}, 2, `^$`, `--topic-pattern: error parsing regexp`},
		{"gzip level", []string{src, "--topic=t", "--gzip-level=10"}, 2, `^$`, `invalid --gzip-level value \(10\), should be 1-9`},
		{"no rev", []string{src, "--topic=t", "--gzip", "--filename-format=<TOPIC>.log"}, 2, `^$`, `missing <REV> in --filename-format`},
		{"sync interval", []string{src, "--topic=t", "--sync-interval=0s"}, 2, `^$`, `--sync-interval must be positive`},
		{"bad topic", []string{src, "--topic=a b"}, 2, `^$`, `not a valid topic name`},
		{"log level", []string{src, "--topic=t", "--log-level=loud"}, 2, `^$`, `unknown level "loud"`},
		{"unreachable", []string{src, "--topic=t", "--output-dir=" + os.TempDir()}, 1, `^$`, `connect to nsqd`},
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

func TestStrftime(t *testing.T) {
	tm := time.Date(2024, time.March, 5, 7, 8, 9, 0, time.FixedZone("XYZ", -7*3600))
	tests := []struct{ format, want string }{
		{"%Y-%m-%d_%H", "2024-03-05_07"},
		{"%y%m%d %I:%M:%S %p", "240305 07:08:09 AM"},
		{"%a %A %b %B", "Tue Tuesday Mar March"},
		{"%Z %z", "XYZ -0700"},
		{"100%% %q %", "100% %q %"},
		{"2006-01-02 Jan 15", "2006-01-02 Jan 15"}, // literal text is not a Go layout
		{"", ""},
	}
	for _, tt := range tests {
		if got := strftime(tt.format, tm); got != tt.want {
			t.Errorf("strftime(%q) = %q, want %q", tt.format, got, tt.want)
		}
	}
	pm := time.Date(2024, 1, 1, 0, 30, 0, 0, time.UTC)
	if got := strftime("%I %p", pm); got != "12 AM" {
		t.Errorf("strftime(%%I %%p) at 00:30 = %q, want \"12 AM\"", got)
	}
}

func TestFilenameFormat(t *testing.T) {
	tests := []struct {
		name string
		o    options
		want string
		err  bool
	}{
		{"default", options{filenameFormat: "<TOPIC>.<HOST><REV>.<DATETIME>.log"}, "<TOPIC>.web1.<DATETIME>.log", false},
		{"identifier", options{filenameFormat: "<HOST>-<PID>", hostIdentifier: "<SHORT_HOST>/<HOSTNAME>"}, "web1/web1.example.com-42", false},
		{"gzip", options{filenameFormat: "<TOPIC><REV>.log", gzip: true}, "<TOPIC><REV>.log.gz", false},
		{"gzip suffix kept", options{filenameFormat: "<TOPIC><REV>.gz", gzip: true}, "<TOPIC><REV>.gz", false},
		{"rotate needs rev", options{filenameFormat: "<TOPIC>.log", rotateSize: 10}, "", true},
		{"work dir needs rev", options{filenameFormat: "<TOPIC>.log", workDir: "/w", outputDir: "/o"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := filenameFormat(&tt.o, "web1.example.com", 42)
			if (err != nil) != tt.err || got != tt.want {
				t.Errorf("filenameFormat = %q, %v; want %q, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}

// channelState returns a channel's depth and in-flight count on n.
func channelState(n *nsqtest.NSQD, topic, channel string) (depth int64, inFlight int) {
	s := n.Stats(nsqd.StatsFilter{Topic: topic, Channel: channel})
	for _, tp := range s.Topics {
		for _, c := range tp.Channels {
			if tp.TopicName == topic && c.ChannelName == channel {
				return c.Depth, c.InFlightCount
			}
		}
	}
	return -1, -1
}

func publishN(t *testing.T, n *nsqtest.NSQD, topic string, count, size int) []string {
	t.Helper()
	var bodies [][]byte
	var lines []string
	for i := range count {
		b := fmt.Appendf(nil, "%s %04d %s", topic, i, strings.Repeat("x", size))
		bodies = append(bodies, b)
		lines = append(lines, string(b))
	}
	tooltest.Publish(t, n.TCPAddr, topic, bodies...)
	return lines
}

func readLines(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(path, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(b))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if b, err = io.ReadAll(zr); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
	}
	if len(b) == 0 {
		return nil
	}
	if b[len(b)-1] != '\n' {
		t.Errorf("%s does not end in a newline", path)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// TestContents writes a topic to one file and finishes every message.
func TestContents(t *testing.T) {
	n := tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, n.TCPAddr, "contents", "nsq_to_file")
	want := publishN(t, n, "contents", 500, 50)
	out := t.TempDir()
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=contents",
		"--output-dir="+out, "--host-identifier=h", "--datetime-format=fixed", "--sync-interval=50ms")
	nsqtest.Eventually(t, tooltest.Timeout, "channel drained", func() bool {
		d, f := channelState(n, "contents", "nsq_to_file")
		return d == 0 && f == 0
	})
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	got := readLines(t, filepath.Join(out, "contents.h.fixed.log"))
	if !slices.Equal(got, want) {
		t.Errorf("file has %d lines, want the %d messages in order", len(got), len(want))
	}
}

// TestFinishAfterSync: with a long --sync-interval and room in flight,
// nothing is finished until the file is synced at exit.
func TestFinishAfterSync(t *testing.T) {
	n := tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, n.TCPAddr, "finsync", "nsq_to_file")
	want := publishN(t, n, "finsync", 10, 10)
	out := t.TempDir()
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=finsync",
		"--output-dir="+out, "--filename-format=<TOPIC>.log", "--sync-interval=1h", "--max-in-flight=1000")
	nsqtest.Eventually(t, tooltest.Timeout, "10 messages in flight", func() bool {
		d, f := channelState(n, "finsync", "nsq_to_file")
		return d == 0 && f == 10
	})
	// Give a wrong early FIN the chance to show.
	deadline := time.Now().Add(200 * time.Millisecond)
	for time.Now().Before(deadline) {
		if _, f := channelState(n, "finsync", "nsq_to_file"); f != 10 {
			t.Fatalf("in flight = %d before any sync, want 10", f)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if d, f := channelState(n, "finsync", "nsq_to_file"); d != 0 || f != 0 {
		t.Errorf("after exit depth %d, in flight %d; want 0, 0", d, f)
	}
	if got := readLines(t, filepath.Join(out, "finsync.log")); !slices.Equal(got, want) {
		t.Errorf("file = %q, want %q", got, want)
	}
}

// TestRotateGzip rotates by size with gzip and a work directory: every
// file lands in the output directory, and the files decompress to the
// messages in order.
func TestRotateGzip(t *testing.T) {
	n := tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, n.TCPAddr, "rotate", "nsq_to_file")
	want := publishN(t, n, "rotate", 300, 90)
	out, work := t.TempDir(), t.TempDir()
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=rotate",
		"--output-dir="+out, "--work-dir="+work, "--host-identifier=h", "--datetime-format=D",
		"--gzip", "--gzip-level=9", "--rotate-size=5000", "--sync-interval=50ms", "--max-in-flight=20")
	nsqtest.Eventually(t, tooltest.Timeout, "channel drained", func() bool {
		d, f := channelState(n, "rotate", "nsq_to_file")
		return d == 0 && f == 0
	})
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if left, _ := os.ReadDir(work); len(left) != 0 {
		t.Errorf("work dir still holds %d files", len(left))
	}
	files, _ := filepath.Glob(filepath.Join(out, "*"))
	slices.Sort(files)
	// A file takes lines while it holds at most --rotate-size bytes.
	lineLen := len(want[0]) + 1
	perFile := 5000/lineLen + 1
	if wantFiles := (len(want) + perFile - 1) / perFile; len(files) != wantFiles {
		t.Errorf("got %d files, want %d: %q", len(files), wantFiles, files)
	}
	var got []string
	for i, f := range files {
		if want := filepath.Join(out, fmt.Sprintf("rotate.h-%06d.D.log.gz", i)); f != want {
			t.Errorf("file %d = %s, want %s", i, f, want)
		}
		lines := readLines(t, f)
		if len(lines) > perFile {
			t.Errorf("%s holds %d lines, want at most %d", f, len(lines), perFile)
		}
		got = append(got, lines...)
	}
	if !slices.Equal(got, want) {
		t.Errorf("files hold %d lines, want the %d messages in order", len(got), len(want))
	}
}

// TestTopicPattern discovers topics through nsqlookupd, including one
// created after the start.
func TestTopicPattern(t *testing.T) {
	l := tooltest.StartLookupd(t)
	n := tooltest.StartNSQD(t, l.TCPAddr)
	wantA := publishN(t, n, "app.a", 5, 1)
	publishN(t, n, "other", 5, 1)
	l.WaitLookup(t, "app.a")
	l.WaitLookup(t, "other")
	out := t.TempDir()
	r := tooltest.Start(t, run, nil, "--lookupd-http-address="+l.HTTPAddr, "--topic-pattern=^app\\.",
		"--topic-refresh=50ms", "--output-dir="+out, "--filename-format=<TOPIC>.log", "--sync-interval=50ms",
		"--skip-empty-files")
	wantB := publishN(t, n, "app.b", 5, 1)
	for _, topic := range []string{"app.a", "app.b"} {
		nsqtest.Eventually(t, tooltest.Timeout, topic+" drained", func() bool {
			d, f := channelState(n, topic, "nsq_to_file")
			return d == 0 && f == 0
		})
	}
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*"))
	slices.Sort(files)
	if want := []string{filepath.Join(out, "app.a.log"), filepath.Join(out, "app.b.log")}; !slices.Equal(files, want) {
		t.Fatalf("files %q, want %q", files, want)
	}
	if got := readLines(t, files[0]); !slices.Equal(got, wantA) {
		t.Errorf("app.a.log = %q, want %q", got, wantA)
	}
	if got := readLines(t, files[1]); !slices.Equal(got, wantB) {
		t.Errorf("app.b.log = %q, want %q", got, wantB)
	}
	if d, _ := channelState(n, "other", "nsq_to_file"); d != -1 {
		t.Errorf("topic other got a nsq_to_file channel, want it left alone")
	}
}

// TestRotateInterval closes a file once --rotate-interval has passed and,
// with --skip-empty-files, opens the next only for the next message.
func TestRotateInterval(t *testing.T) {
	n := tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, n.TCPAddr, "interval", "nsq_to_file")
	out, work := t.TempDir(), t.TempDir()
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+n.TCPAddr, "--topic=interval",
		"--output-dir="+out, "--work-dir="+work, "--filename-format=<TOPIC><REV>.log",
		"--rotate-interval=400ms", "--sync-interval=20ms", "--skip-empty-files")
	first := publishN(t, n, "interval", 3, 1)
	rev0 := filepath.Join(out, "interval-000000.log")
	nsqtest.Eventually(t, tooltest.Timeout, "the first file to be rotated into the output dir", func() bool {
		_, err := os.Stat(rev0)
		return err == nil
	})
	second := publishN(t, n, "interval", 3, 1)
	nsqtest.Eventually(t, tooltest.Timeout, "channel drained", func() bool {
		d, f := channelState(n, "interval", "nsq_to_file")
		return d == 0 && f == 0
	})
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*"))
	if want := []string{rev0, filepath.Join(out, "interval-000001.log")}; !slices.Equal(files, want) {
		t.Fatalf("files %q, want %q", files, want)
	}
	if got := readLines(t, files[0]); !slices.Equal(got, first) {
		t.Errorf("%s = %q, want %q", files[0], got, first)
	}
	if got := readLines(t, files[1]); !slices.Equal(got, second) {
		t.Errorf("%s = %q, want %q", files[1], got, second)
	}
}
