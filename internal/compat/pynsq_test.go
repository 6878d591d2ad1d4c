package compat

// pynsq, the Python client, cannot run in CI, so these tests replay the
// bytes it was seen to send, in the order and with the pipelining it uses,
// over raw TCP against a real nsqd. The code is ours, written from those
// observations; see doc.go.

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"hash/crc32"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/snappy"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/wire"
)

// pyTransport is a way pynsq can talk to nsqd: plain TCP, or what
// IDENTIFY may turn on (tls_v1, snappy, deflate, TLS with either).
type pyTransport struct {
	name                 string
	tls, snappy, deflate bool
}

var (
	pyPlain   = pyTransport{name: "plain"}
	pySnappy  = pyTransport{name: "snappy", snappy: true}
	pyDeflate = pyTransport{name: "deflate", deflate: true}
	pyAll     = []pyTransport{
		pyPlain, pySnappy, pyDeflate,
		{name: "tls", tls: true},
		{name: "tls+snappy", tls: true, snappy: true},
		{name: "tls+deflate", tls: true, deflate: true},
	}
)

// TestPynsq runs each pynsq behaviour over its transports, each against
// its own nsqd. Publishing, consuming and requeueing run over every
// transport; heartbeats over the plain and the compressed ones (a
// heartbeat is the lone frame a compressed idle connection gets); TOUCH,
// which is about timing alone, over plain TCP.
func TestPynsq(t *testing.T) {
	cases := []struct {
		name       string
		transports []pyTransport
		run        func(t *testing.T, s *pyServer)
	}{
		{"publish-consume", pyAll, pyPublishConsume},
		{"requeue", pyAll, pyRequeue},
		{"heartbeat", []pyTransport{pyPlain, pySnappy, pyDeflate}, pyHeartbeat},
		{"touch", []pyTransport{pyPlain}, pyTouch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			for _, tr := range tc.transports {
				t.Run(tr.name, func(t *testing.T) {
					t.Parallel()
					s := &pyServer{t: t, snappy: tr.snappy, deflate: tr.deflate}
					var mutate func(*nsqd.Config)
					if tr.tls {
						p := newPKI(t)
						s.caFile = p.ca
						mutate = func(c *nsqd.Config) {
							c.TLSCert, c.TLSKey, c.TLSRequired = p.cert, p.key, nsqd.TLSRequired
						}
					}
					s.NSQD = nsqtest.StartNSQD(t, mutate)
					tc.run(t, s)
				})
			}
		})
	}
}

// TestPynsqSnappyCommand pins the snappy encoder of these tests to the
// bytes pynsq was seen to send for "RDY 1\n": a stream identifier chunk,
// then one uncompressed chunk with its masked CRC-32C.
func TestPynsqSnappyCommand(t *testing.T) {
	want, _ := hex.DecodeString("ff060000734e61507059" + "010a00003e353fde" + "52445920310a")
	if got := pySnappyCommand([]byte("RDY 1\n")); !bytes.Equal(got, want) {
		t.Errorf("pySnappyCommand(%q) = %x, want %x", "RDY 1\n", got, want)
	}
}

// TestPynsqIdentifyBody pins the IDENTIFY body of these tests to the one
// pynsq was seen to send with its defaults, and with msg_timeout set.
func TestPynsqIdentifyBody(t *testing.T) {
	const defaults = `{"short_id": "vm", "long_id": "vm", "client_id": "vm", "hostname": "vm", "heartbeat_interval": 30000, "feature_negotiation": true, "tls_v1": false, "snappy": false, "deflate": false, "deflate_level": 6, "output_buffer_timeout": 250, "output_buffer_size": 16384, "sample_rate": 0, "user_agent": "pynsq/0.8.3-alpha"}`
	tests := []struct {
		id   pyIdentify
		want string
	}{
		{pyIdentify{}, defaults},
		{pyIdentify{msgTimeoutMS: 1000}, strings.TrimSuffix(defaults, "}") + `, "msg_timeout": 1000}`},
		{pyIdentify{tls: true, deflate: true}, strings.Replace(strings.Replace(defaults, `"tls_v1": false`, `"tls_v1": true`, 1), `"deflate": false`, `"deflate": true`, 1)},
	}
	for _, tt := range tests {
		if got := string(tt.id.body()); got != tt.want {
			t.Errorf("body(%+v) = %s, want %s", tt.id, got, tt.want)
		}
	}
}

// pyPublishConsume: a Writer pipelines PUB, MPUB and DPUB and matches the
// OKs in order; a Reader pipelines SUB and RDY 1, raises RDY to its
// max_in_flight on the first message, FINs everything and hangs up.
func pyPublishConsume(t *testing.T, s *pyServer) {
	const topic, channel, maxInFlight = "pynsq_pub", "pynsq_ch", 3
	big := strings.Repeat("pynsq compressible body ", 5000) // > one 64 KiB snappy chunk
	w := s.dial(pyIdentify{})
	w.send(pyPub(topic, "a"), pyMPub(topic, "b", big, "c"), pyDPub(topic, 50, "d"))
	for range 3 {
		w.expectOK()
	}

	r := s.dial(pyIdentify{})
	r.send([]byte("SUB "+topic+" "+channel+"\n"), []byte("RDY 1\n"))
	r.expectOK()
	want := []string{"a", "b", big, "c", "d"}
	var got []string
	for len(got) < len(want) {
		m := r.message()
		if m.Attempts != 1 {
			t.Errorf("message %.20q attempts %d, want 1", m.Body, m.Attempts)
		}
		if len(got) == 0 {
			r.send([]byte("RDY " + strconv.Itoa(maxInFlight) + "\n"))
		}
		got = append(got, string(m.Body))
		r.send(pyFin(m.ID))
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("received %d bodies %.40q, want %d %.40q", len(got), got, len(want), want)
	}

	nsqtest.Eventually(t, 5*time.Second, "every FIN counted", func() bool {
		ch := s.channel(topic, channel)
		return len(ch.Clients) == 1 && ch.Clients[0].FinishCount == uint64(len(want)) && ch.InFlightCount == 0
	})
	ch := s.channel(topic, channel)
	cl := ch.Clients[0]
	if ch.MessageCount != uint64(len(want)) || ch.Depth != 0 || ch.RequeueCount != 0 || ch.TimeoutCount != 0 {
		t.Errorf("channel messages %d depth %d requeued %d timed out %d, want %d 0 0 0",
			ch.MessageCount, ch.Depth, ch.RequeueCount, ch.TimeoutCount, len(want))
	}
	if cl.ReadyCount != maxInFlight || cl.UserAgent != pyUserAgent || cl.ClientID != "vm" || cl.Hostname != "vm" ||
		cl.Snappy != s.snappy || cl.Deflate != s.deflate || cl.TLS != (s.caFile != "") {
		t.Errorf("client ready %d user_agent %q client_id %q hostname %q snappy %v deflate %v tls %v; want %d %q vm vm %v %v %v",
			cl.ReadyCount, cl.UserAgent, cl.ClientID, cl.Hostname, cl.Snappy, cl.Deflate, cl.TLS,
			maxInFlight, pyUserAgent, s.snappy, s.deflate, s.caFile != "")
	}

	// pynsq closes by shutting the socket, without CLS.
	r.close()
	w.close()
	nsqtest.Eventually(t, 5*time.Second, "the Reader's connection dropped", func() bool {
		return len(s.channel(topic, channel).Clients) == 0
	})
}

// pyHeartbeat: with heartbeat_interval 1000 the Reader answers each
// _heartbeat_ with NOP; the connection outlives 3 intervals and still
// delivers.
func pyHeartbeat(t *testing.T, s *pyServer) {
	const topic, channel, interval = "pynsq_hb", "pynsq_ch", time.Second
	r := s.dial(pyIdentify{heartbeatMS: int(interval / time.Millisecond)})
	r.send([]byte("SUB "+topic+" "+channel+"\n"), []byte("RDY 1\n"))
	r.expectOK()
	start := time.Now()
	for r.beats < 3 || time.Since(start) < 3*interval+interval/4 {
		if time.Since(start) > 8*interval {
			t.Fatalf("%d heartbeats in %v with a %v interval, want 3", r.beats, time.Since(start), interval)
		}
		r.quiet(interval / 4)
	}

	w := s.dial(pyIdentify{})
	w.send(pyPub(topic, "after heartbeats"))
	w.expectOK()
	m := r.message()
	if string(m.Body) != "after heartbeats" {
		t.Fatalf("got %q, want %q", m.Body, "after heartbeats")
	}
	r.send(pyFin(m.ID))
	nsqtest.Eventually(t, 5*time.Second, "the FIN counted", func() bool {
		ch := s.channel(topic, channel)
		return len(ch.Clients) == 1 && ch.Clients[0].FinishCount == 1
	})
}

// pyRequeue: a requeue with backoff is RDY 0, REQ <id> <ms> and, once the
// backoff passes, RDY 1; a requeue without backoff is REQ <id> 0. Either
// way the same message comes back with attempts 2.
func pyRequeue(t *testing.T, s *pyServer) {
	const topic, channel = "pynsq_req", "pynsq_ch"
	w := s.dial(pyIdentify{})
	r := s.dial(pyIdentify{})
	r.send([]byte("SUB "+topic+" "+channel+"\n"), []byte("RDY 1\n"))
	r.expectOK()

	w.send(pyPub(topic, "backoff"))
	w.expectOK()
	m := r.message()
	r.send([]byte("RDY 0\n"), pyReq(m.ID, 100))
	r.quiet(400 * time.Millisecond) // the backoff: nothing may arrive at RDY 0
	r.send([]byte("RDY 1\n"))
	again := r.message()
	if again.ID != m.ID || again.Attempts != 2 || string(again.Body) != "backoff" {
		t.Fatalf("after backoff got %s attempts %d %q, want %s attempts 2 %q", again.ID[:], again.Attempts, again.Body, m.ID[:], "backoff")
	}
	r.send(pyFin(again.ID))

	w.send(pyPub(topic, "no backoff"))
	w.expectOK()
	m = r.message()
	if m.Attempts != 1 || string(m.Body) != "no backoff" {
		t.Fatalf("got attempts %d %q, want attempts 1 %q", m.Attempts, m.Body, "no backoff")
	}
	r.send(pyReq(m.ID, 0))
	again = r.message()
	if again.ID != m.ID || again.Attempts != 2 || string(again.Body) != "no backoff" {
		t.Fatalf("after REQ 0 got %s attempts %d %q, want %s attempts 2 %q", again.ID[:], again.Attempts, again.Body, m.ID[:], "no backoff")
	}
	r.send(pyFin(again.ID))

	nsqtest.Eventually(t, 5*time.Second, "both FINs counted", func() bool {
		ch := s.channel(topic, channel)
		return len(ch.Clients) == 1 && ch.Clients[0].FinishCount == 2 && ch.InFlightCount == 0
	})
	if ch := s.channel(topic, channel); ch.RequeueCount != 2 || ch.TimeoutCount != 0 || ch.Depth != 0 || ch.DeferredCount != 0 {
		t.Errorf("channel requeued %d timed out %d depth %d deferred %d, want 2 0 0 0", ch.RequeueCount, ch.TimeoutCount, ch.Depth, ch.DeferredCount)
	}
}

// pyTouch: with msg_timeout 1000 in IDENTIFY, a TOUCH every 300 ms holds
// a message for 2.5 s; it never times out and FIN then succeeds.
func pyTouch(t *testing.T, s *pyServer) {
	const topic, channel = "pynsq_touch", "pynsq_ch"
	const msgTimeout, every, hold = time.Second, 300 * time.Millisecond, 2500 * time.Millisecond
	w := s.dial(pyIdentify{})
	r := s.dial(pyIdentify{msgTimeoutMS: int(msgTimeout / time.Millisecond)})
	if got := r.reply.MsgTimeout; got != msgTimeout.Milliseconds() {
		t.Fatalf("IDENTIFY reply msg_timeout %d, want %d", got, msgTimeout.Milliseconds())
	}
	r.send([]byte("SUB "+topic+" "+channel+"\n"), []byte("RDY 1\n"))
	r.expectOK()
	w.send(pyPub(topic, "slow"))
	w.expectOK()
	m := r.message()
	start := time.Now()
	for time.Since(start) < hold {
		r.quiet(every) // a redelivery would arrive here
		r.send([]byte("TOUCH " + string(m.ID[:]) + "\n"))
	}
	r.send(pyFin(m.ID))
	nsqtest.Eventually(t, 5*time.Second, "the FIN counted", func() bool {
		ch := s.channel(topic, channel)
		return len(ch.Clients) == 1 && ch.Clients[0].FinishCount == 1 && ch.InFlightCount == 0
	})
	if ch := s.channel(topic, channel); ch.TimeoutCount != 0 || ch.RequeueCount != 0 || ch.Depth != 0 {
		t.Errorf("after %v of TOUCH: timed out %d requeued %d depth %d, want 0 0 0", hold, ch.TimeoutCount, ch.RequeueCount, ch.Depth)
	}
	r.quiet(100 * time.Millisecond) // no E_FIN_FAILED
}

// pyServer is an nsqd and how the connections of a test reach it.
type pyServer struct {
	*nsqtest.NSQD
	t               *testing.T
	caFile          string // TLS when set
	snappy, deflate bool
}

// channel returns the stats of one channel, with its clients.
func (s *pyServer) channel(topic, channel string) nsqd.ChannelStats {
	s.t.Helper()
	st := s.Stats(nsqd.StatsFilter{Topic: topic, Channel: channel, IncludeClients: true})
	if len(st.Topics) != 1 || len(st.Topics[0].Channels) != 1 {
		s.t.Fatalf("stats %+v, want topic %s with channel %s", st.Topics, topic, channel)
	}
	return st.Topics[0].Channels[0]
}

const pyUserAgent = "pynsq/0.8.3-alpha"

// pyIdentify is what a test sets of pynsq's IDENTIFY; the transport's
// flags come from the server.
type pyIdentify struct {
	heartbeatMS  int // 0: pynsq's default, 30000
	msgTimeoutMS int // 0: not sent
	tls          bool
	snappy       bool
	deflate      bool
}

// body is the IDENTIFY body as pynsq writes it: Python's json.dumps, keys
// in this order, msg_timeout only when set.
func (id pyIdentify) body() []byte {
	hb := id.heartbeatMS
	if hb == 0 {
		hb = 30000
	}
	b := []byte(`{"short_id": "vm", "long_id": "vm", "client_id": "vm", "hostname": "vm", "heartbeat_interval": `)
	b = strconv.AppendInt(b, int64(hb), 10)
	b = append(b, `, "feature_negotiation": true, "tls_v1": `...)
	b = strconv.AppendBool(b, id.tls)
	b = append(b, `, "snappy": `...)
	b = strconv.AppendBool(b, id.snappy)
	b = append(b, `, "deflate": `...)
	b = strconv.AppendBool(b, id.deflate)
	b = append(b, `, "deflate_level": 6, "output_buffer_timeout": 250, "output_buffer_size": 16384, "sample_rate": 0, "user_agent": "`+pyUserAgent+`"`...)
	if id.msgTimeoutMS > 0 {
		b = append(b, `, "msg_timeout": `...)
		b = strconv.AppendInt(b, int64(id.msgTimeoutMS), 10)
	}
	return append(b, '}')
}

// pyIdentifyReply is the part of nsqd's IDENTIFY reply pynsq reads.
type pyIdentifyReply struct {
	MaxRdyCount  int64 `json:"max_rdy_count"`
	MsgTimeout   int64 `json:"msg_timeout"`
	TLSv1        bool  `json:"tls_v1"`
	Snappy       bool  `json:"snappy"`
	Deflate      bool  `json:"deflate"`
	AuthRequired bool  `json:"auth_required"`
}

// pyConn is one connection that speaks as pynsq does. Frames are read by
// a goroutine (started by dial, stopped by the test's cleanup) so that no
// read deadline ever reaches a decompressor, which would keep the error.
type pyConn struct {
	t      *testing.T
	nc     net.Conn  // the TCP socket
	out    io.Writer // the socket, or TLS over it
	encode func(cmd []byte) []byte
	reply  pyIdentifyReply
	frames chan pyFrame
	beats  int // heartbeats answered
}

type pyFrame struct {
	typ  int32
	data []byte
	err  error
}

// dial connects and shakes hands as pynsq does: the magic and IDENTIFY,
// then the JSON reply; with TLS accepted, the handshake and OK over TLS;
// with compression accepted, both directions switch and OK arrives
// compressed.
func (s *pyServer) dial(id pyIdentify) *pyConn {
	t := s.t
	t.Helper()
	id.tls, id.snappy, id.deflate = s.caFile != "", s.snappy, s.deflate
	nc := nsqtest.Dial(t, s.TCPAddr) // deadline for the handshake; cleared below
	c := &pyConn{t: t, nc: nc, out: nc, frames: make(chan pyFrame)}
	c.write([]byte("  V2"))
	c.write(wire.AppendCommand(nil, "IDENTIFY", id.body()))
	// Read exactly one frame from the socket, so that nothing sent after
	// it is taken from under TLS or the decompressor.
	typ, data, err := wire.ReadFrame(nc, 1<<20)
	if err != nil || typ != wire.FrameResponse {
		t.Fatalf("IDENTIFY reply: frame type %d %q, %v", typ, data, err)
	}
	if err := json.Unmarshal(data, &c.reply); err != nil {
		t.Fatalf("IDENTIFY reply %q: %v", data, err)
	}
	if c.reply.TLSv1 != id.tls || c.reply.Snappy != id.snappy || c.reply.Deflate != id.deflate || c.reply.AuthRequired || c.reply.MaxRdyCount < 1 {
		t.Fatalf("IDENTIFY reply %s, want tls_v1 %v snappy %v deflate %v, no auth, max_rdy_count >= 1", data, id.tls, id.snappy, id.deflate)
	}

	var in io.Reader = nc
	if id.tls {
		pem, err := os.ReadFile(s.caFile)
		if err != nil {
			t.Fatal(err)
		}
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(pem)
		tc := tls.Client(nc, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
		if err := tc.Handshake(); err != nil {
			t.Fatalf("TLS handshake: %v", err)
		}
		c.out, in = tc, tc
		if typ, data, err := wire.ReadFrame(tc, 1<<20); err != nil || typ != wire.FrameResponse || string(data) != "OK" {
			t.Fatalf("after TLS: frame type %d %q, %v; want OK", typ, data, err)
		}
	}
	switch {
	case id.snappy:
		c.encode = pySnappyCommand
		in = snappy.NewReader(in)
	case id.deflate:
		c.encode = pyDeflater(t)
		in = flate.NewReader(in)
	}
	nc.SetDeadline(time.Time{})

	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { c.readFrames(in, stop) })
	t.Cleanup(func() {
		close(stop)
		nc.Close()
		wg.Wait()
	})
	if id.snappy || id.deflate {
		c.expectOK()
	}
	return c
}

// readFrames passes every frame read from in to c.frames until an error,
// which it passes on too, or until stop is closed.
func (c *pyConn) readFrames(in io.Reader, stop <-chan struct{}) {
	br := bufio.NewReaderSize(in, 32<<10)
	for {
		typ, data, err := wire.ReadFrame(br, 16<<20)
		select {
		case c.frames <- pyFrame{typ, data, err}:
		case <-stop:
			return
		}
		if err != nil {
			return
		}
	}
}

func (c *pyConn) write(b []byte) {
	c.t.Helper()
	if _, err := c.out.Write(b); err != nil {
		c.t.Fatalf("write %.40q: %v", b, err)
	}
}

// send writes each command as pynsq does, one after the other without
// waiting for any reply; under compression each is encoded on its own.
func (c *pyConn) send(cmds ...[]byte) {
	c.t.Helper()
	for _, cmd := range cmds {
		if c.encode != nil {
			cmd = c.encode(cmd)
		}
		c.write(cmd)
	}
}

// close shuts the socket, as pynsq does; there is no CLS.
func (c *pyConn) close() { c.nc.Close() }

// next returns the next frame that is not a heartbeat, answering each
// heartbeat with NOP at once as pynsq does. It fails the test on an error
// frame, a read error or after d.
func (c *pyConn) next(d time.Duration) (pyFrame, bool) {
	c.t.Helper()
	timer := time.NewTimer(d)
	defer timer.Stop()
	for {
		select {
		case f := <-c.frames:
			if f.err != nil {
				c.t.Fatalf("read: %v", f.err)
			}
			if f.typ == wire.FrameError {
				c.t.Fatalf("error frame %q", f.data)
			}
			if f.typ == wire.FrameResponse && bytes.Equal(f.data, wire.Heartbeat) {
				c.beats++
				c.send([]byte("NOP\n"))
				continue
			}
			return f, true
		case <-timer.C:
			return pyFrame{}, false
		}
	}
}

func (c *pyConn) expectOK() {
	c.t.Helper()
	f, ok := c.next(5 * time.Second)
	if !ok || f.typ != wire.FrameResponse || string(f.data) != "OK" {
		c.t.Fatalf("got frame type %d %q (received %v), want OK", f.typ, f.data, ok)
	}
}

func (c *pyConn) message() wire.Message {
	c.t.Helper()
	f, ok := c.next(5 * time.Second)
	if !ok || f.typ != wire.FrameMessage {
		c.t.Fatalf("got frame type %d %q (received %v), want a message", f.typ, f.data, ok)
	}
	m, err := wire.DecodeMessage(f.data)
	if err != nil {
		c.t.Fatalf("message %q: %v", f.data, err)
	}
	return m
}

// quiet waits d, answering heartbeats, and fails on any other frame.
func (c *pyConn) quiet(d time.Duration) {
	c.t.Helper()
	if f, ok := c.next(d); ok {
		c.t.Fatalf("got frame type %d %.60q, want nothing for %v", f.typ, f.data, d)
	}
}

func pyPub(topic, body string) []byte {
	return wire.AppendCommand(nil, "PUB", []byte(body), topic)
}

func pyMPub(topic string, bodies ...string) []byte {
	var bs [][]byte
	for _, b := range bodies {
		bs = append(bs, []byte(b))
	}
	return wire.AppendCommand(nil, "MPUB", wire.AppendMPUBBody(nil, bs), topic)
}

func pyDPub(topic string, ms int, body string) []byte {
	return wire.AppendCommand(nil, "DPUB", []byte(body), topic, strconv.Itoa(ms))
}

func pyFin(id wire.ID) []byte { return []byte("FIN " + string(id[:]) + "\n") }

func pyReq(id wire.ID, ms int) []byte {
	return []byte("REQ " + string(id[:]) + " " + strconv.Itoa(ms) + "\n")
}

// pySnappyCommand encodes one command as pynsq does: a new snappy framing
// stream per command, so a stream identifier chunk, then the command in
// chunks of at most 64 KiB, each compressed (type 0x00) when that is
// smaller, else stored (type 0x01), with the masked CRC-32C of its
// uncompressed data.
func pySnappyCommand(cmd []byte) []byte {
	out := []byte{0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y'}
	for len(cmd) > 0 {
		piece := cmd[:min(len(cmd), 64<<10)]
		cmd = cmd[len(piece):]
		typ, data := byte(0x01), piece
		if enc := snappy.Encode(nil, piece); len(enc) < len(piece) {
			typ, data = 0x00, enc
		}
		n := 4 + len(data)
		out = append(out, typ, byte(n), byte(n>>8), byte(n>>16))
		out = binary.LittleEndian.AppendUint32(out, pyMaskedCRC(piece))
		out = append(out, data...)
	}
	return out
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// pyMaskedCRC is the CRC of the snappy framing format.
func pyMaskedCRC(b []byte) uint32 {
	c := crc32.Checksum(b, castagnoli)
	return (c>>15 | c<<17) + 0xa282ead8
}

// pyDeflater returns an encoder that compresses each command into one raw
// DEFLATE stream at level 6 and ends it with a sync flush (00 00 ff ff),
// as pynsq does.
func pyDeflater(t *testing.T) func([]byte) []byte {
	var buf bytes.Buffer
	fw, err := flate.NewWriter(&buf, 6)
	if err != nil {
		t.Fatal(err)
	}
	return func(cmd []byte) []byte {
		buf.Reset()
		if _, err := fw.Write(cmd); err != nil {
			t.Fatal(err)
		}
		if err := fw.Flush(); err != nil {
			t.Fatal(err)
		}
		out := bytes.Clone(buf.Bytes())
		if !bytes.HasSuffix(out, []byte{0, 0, 0xff, 0xff}) {
			t.Fatalf("deflated %.40q ends %x, want a sync flush", cmd, out[max(0, len(out)-4):])
		}
		return out
	}
}
