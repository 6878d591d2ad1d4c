package main

import (
	"fmt"
	"regexp"
	"slices"
	"testing"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/internal/toolflags/tooltest"
	"github.com/nsqx/nsqx/nsqd"
)

func TestFlags(t *testing.T) {
	src, dst := "--nsqd-tcp-address=127.0.0.1:1", "--destination-nsqd-tcp-address=127.0.0.1:2"
	tests := []struct {
		name   string
		args   []string
		code   int
		stdout string // regexp
		stderr string // regexp
	}{
		{"help", []string{"-h"}, 0, `(?s)^Usage: nsq_to_nsq .*\n  -channel channel\n.*\(default "nsq_to_nsq"\).*\n  -max-in-flight int\n.*\(default 200\).*\n  -mode value\n.*\(default hostpool\).*\n  -status-every int\n.*\(default 250\)`, `^$`},
		{"version", []string{"--version"}, 0, `^nsq_to_nsq v1\.3\.0 \(nsqx `, `^$`},
		{"no topic", []string{src, dst}, 2, `^$`, `--topic and --channel are required`},
		{"bad topic", []string{src, dst, "--topic=a:b"}, 2, `^$`, `--topic "a:b" is not a valid topic name`},
		{"bad destination topic", []string{src, dst, "--topic=a", "--destination-topic=!"}, 2, `^$`, `--destination-topic "!" is not a valid topic name`},
		{"no destination", []string{src, "--topic=a"}, 2, `^$`, `--destination-nsqd-tcp-address required`},
		{"value without field", []string{src, dst, "--topic=a", "--require-json-value=x"}, 2, `^$`, `--require-json-value needs --require-json-field`},
		{"mode", []string{src, dst, "--topic=a", "--mode=random"}, 2, `^$`, `unknown mode "random"`},
		{"no source", []string{dst, "--topic=a"}, 2, `^$`, `--nsqd-tcp-address or --lookupd-http-address required`},
		{"bad producer-opt", []string{"--producer-opt=nope,1"}, 2, `^$`, `invalid value "nope,1" for flag -producer-opt`},
		{"unreachable", []string{src, dst, "--topic=a"}, 1, `^$`, `connect to nsqd`},
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

func TestFilter(t *testing.T) {
	tests := []struct {
		field, value string
		whitelist    []string
		in           string
		want         string
		verdict      verdict
	}{
		{"", "", nil, "not json", "not json", pass},
		{"type", "", nil, "not json", "", drop},
		{"type", "", nil, `[1,2]`, "", drop},
		{"type", "", nil, `null`, "", drop},
		{"type", "", nil, `{"id":1}`, "", drop},
		{"type", "", nil, `{"type":null}`, `{"type":null}`, pass},
		{"type", "click", nil, `{"id":1}`, "", backoff},
		{"type", "click", nil, `{"type":"click","id":1}`, `{"type":"click","id":1}`, pass},
		{"type", "click", nil, `{"type":"view"}`, "", drop},
		{"type", "click", nil, `{"type":"cl\u0069ck"}`, `{"type":"cl\u0069ck"}`, pass},
		{"n", "2", nil, `{"n":2}`, `{"n":2}`, pass},
		{"n", "2", nil, `{"n":2.0}`, `{"n":2.0}`, pass},
		{"n", "2", nil, `{"n":"2"}`, `{"n":"2"}`, pass},
		{"n", "2", nil, `{"n":3}`, "", drop},
		{"n", "x", nil, `{"n":2}`, "", drop},
		{"b", "true", nil, `{"b":true}`, "", drop},
		{"", "", []string{"id", "type", "absent"}, `{"type":"click","id":12345678901234567890,"secret":"s","nested":{"a":1}}`,
			`{"id":12345678901234567890,"type":"click"}`, pass},
		{"type", "click", []string{"id"}, `{"type":"click","id":{"z":1, "a":[1, 2]}}`, `{"id":{"z":1,"a":[1,2]}}`, pass},
		{"", "", []string{"id"}, `"string"`, "", drop},
	}
	for _, tt := range tests {
		f := newFilter(tt.field, tt.value, tt.whitelist)
		got, v := f.apply([]byte(tt.in))
		if v != tt.verdict || string(got) != tt.want {
			t.Errorf("filter(field %q, value %q, whitelist %q).apply(%s) = %s, %d; want %s, %d",
				tt.field, tt.value, tt.whitelist, tt.in, got, v, tt.want, tt.verdict)
		}
	}
}

// channelState returns a channel's depth, its in-flight and deferred
// messages together, and its requeue count.
func channelState(n *nsqtest.NSQD, topic, channel string) (depth int64, held int, requeued uint64) {
	s := n.Stats(nsqd.StatsFilter{Topic: topic, Channel: channel})
	for _, tp := range s.Topics {
		for _, c := range tp.Channels {
			if tp.TopicName == topic && c.ChannelName == channel {
				return c.Depth, c.InFlightCount + c.DeferredCount, c.RequeueCount
			}
		}
	}
	return -1, -1, 0
}

func waitDrained(t *testing.T, n *nsqtest.NSQD, topic, channel string) {
	t.Helper()
	nsqtest.Eventually(t, tooltest.Timeout, topic+"/"+channel+" drained", func() bool {
		d, f, _ := channelState(n, topic, channel)
		return d == 0 && f == 0
	})
}

func publishTo(t *testing.T, n *nsqtest.NSQD, topic string, bodies ...string) {
	t.Helper()
	var bs [][]byte
	for _, b := range bodies {
		bs = append(bs, []byte(b))
	}
	tooltest.Publish(t, n.TCPAddr, topic, bs...)
}

func strs(bs [][]byte) []string {
	var s []string
	for _, b := range bs {
		s = append(s, string(b))
	}
	return s
}

// TestRelayFiltered copies between two nsqds through the JSON filters, to
// another topic.
func TestRelayFiltered(t *testing.T) {
	src, dst := tooltest.StartNSQD(t), tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, src.TCPAddr, "events", "nsq_to_nsq")
	tooltest.CreateChannel(t, dst.TCPAddr, "clicks", "c")
	var in, want []string
	for i := range 60 {
		typ := []string{"click", "view", "other"}[i%3]
		in = append(in, fmt.Sprintf(`{"type":%q,"id":%d,"user":"u%d"}`, typ, i, i))
		if typ == "click" {
			want = append(want, fmt.Sprintf(`{"id":%d,"type":"click"}`, i))
		}
	}
	in = append(in, "not json", `{"id":1000}`)
	publishTo(t, src, "events", in...)

	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+src.TCPAddr, "--topic=events",
		"--destination-nsqd-tcp-address="+dst.TCPAddr, "--destination-topic=clicks",
		"--require-json-field=type", "--whitelist-json-field=id", "--whitelist-json-field=type",
		"--require-json-value=click", "--consumer-opt=max_attempts,1", "--consumer-opt=max_backoff_duration,0",
		"--consumer-opt=default_requeue_delay,0")
	// {"id":1000} lacks the field: it is requeued with backoff, then
	// given up on by go-nsq after max_attempts.
	waitDrained(t, src, "events", "nsq_to_nsq")
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	if d, _, _ := channelState(dst, "clicks", "c"); d != int64(len(want)) {
		t.Errorf("destination depth %d, want %d", d, len(want))
	}
	got := strs(tooltest.Consume(t, dst.TCPAddr, "clicks", "c", len(want)))
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("destination got\n%q\nwant\n%q", got, want)
	}
}

// TestFinishAfterAck: while the destination is down nothing is finished;
// once it is up, everything arrives.
func TestFinishAfterAck(t *testing.T) {
	src := tooltest.StartNSQD(t)
	gone := tooltest.StartNSQD(t)
	dstAddr := gone.TCPAddr
	gone.Stop(t)
	tooltest.CreateChannel(t, src.TCPAddr, "ack", "nsq_to_nsq")
	want := []string{"a", "b", "c", "d", "e"}
	publishTo(t, src, "ack", want...)

	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+src.TCPAddr, "--topic=ack",
		"--destination-nsqd-tcp-address="+dstAddr, "--consumer-opt=max_attempts,0",
		"--consumer-opt=default_requeue_delay,20ms", "--consumer-opt=max_backoff_duration,0")
	nsqtest.Eventually(t, tooltest.Timeout, "failed publishes requeued", func() bool {
		_, _, req := channelState(src, "ack", "nsq_to_nsq")
		return req >= 10
	})
	s := src.Stats(nsqd.StatsFilter{Topic: "ack", Channel: "nsq_to_nsq"})
	c := s.Topics[0].Channels[0]
	if held := c.Depth + int64(c.InFlightCount+c.DeferredCount); held != 5 || c.MessageCount != 5 {
		t.Fatalf("source holds %d messages (depth, in flight, deferred) of %d while the destination is down, want all 5",
			held, c.MessageCount)
	}

	// The destination comes up on the same address.
	dst := nsqtest.StartNSQD(t, func(c *nsqd.Config) { c.TCPAddress = dstAddr })
	tooltest.CreateChannel(t, dst.TCPAddr, "ack", "c")
	waitDrained(t, src, "ack", "nsq_to_nsq")
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	got := strs(tooltest.Consume(t, dst.TCPAddr, "ack", "c", len(want)))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("destination got %q, want %q", got, want)
	}
}

// TestRoundRobin spreads the messages over two destinations.
func TestRoundRobin(t *testing.T) {
	src, a, b := tooltest.StartNSQD(t), tooltest.StartNSQD(t), tooltest.StartNSQD(t)
	tooltest.CreateChannel(t, src.TCPAddr, "rr", "nsq_to_nsq")
	publishTo(t, src, "rr", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10")
	r := tooltest.Start(t, run, nil, "--nsqd-tcp-address="+src.TCPAddr, "--topic=rr",
		"--destination-nsqd-tcp-address="+a.TCPAddr, "--destination-nsqd-tcp-address="+b.TCPAddr,
		"--mode=round-robin", "--status-every=5")
	waitDrained(t, src, "rr", "nsq_to_nsq")
	if code := r.Stop(t); code != 0 {
		t.Fatalf("exit %d", code)
	}
	for _, n := range []*nsqtest.NSQD{a, b} {
		s := n.Stats(nsqd.StatsFilter{Topic: "rr"})
		if len(s.Topics) != 1 || s.Topics[0].MessageCount != 5 {
			t.Errorf("destination %s: topics %+v, want rr with 5 messages", n.TCPAddr, s.Topics)
		}
	}
	if !regexp.MustCompile(`msg=status dest=aggregate requests=10 `).MatchString(r.Stderr.String()) {
		t.Errorf("no aggregate status line after 10 messages:\n%s", r.Stderr)
	}
}
