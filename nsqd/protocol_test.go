package nsqd_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nsqx/nsqx/internal/nsqtest"
	"github.com/nsqx/nsqx/nsqd"
	"github.com/nsqx/nsqx/wire"
)

// This file speaks protocol V2 as raw bytes and checks every reply byte for
// byte against NSQ 1.3. Each test body runs once per transport through
// runProtocol; tables run once per write mode (whole, byte by byte).

// transports are the listeners and layers every protocol test runs over:
// tls, snappy and deflate are TCP upgraded by IDENTIFY as dial connects
// (upgradeTransport, tls_test.go).
var transports = []string{"tcp", "unix", "tls", "snappy", "deflate"}

// server is an nsqd under test, the network its TCP listener uses and the
// transport clients upgrade to.
type server struct {
	*nsqtest.NSQD
	network   string
	transport string
	pki       *testPKI // tls only
}

func startServer(t testing.TB, transport string, mutate func(*nsqd.Config)) *server {
	t.Helper()
	network := "tcp"
	if transport == "unix" {
		network = "unix"
	}
	var pki *testPKI
	if transport == "tls" {
		pki = newTestPKI(t)
	}
	n := nsqtest.StartNSQD(t, func(cfg *nsqd.Config) {
		if pki != nil {
			pki.server(cfg)
		}
		if network == "unix" {
			// Socket paths are limited to ~100 bytes; test temp dirs can be longer.
			dir, err := os.MkdirTemp("", "nsqx")
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { os.RemoveAll(dir) })
			cfg.TCPAddress = filepath.Join(dir, "nsqd.sock")
		}
		if mutate != nil {
			mutate(cfg)
		}
	})
	return &server{NSQD: n, network: network, transport: transport, pki: pki}
}

// runProtocol runs body against a fresh nsqd, configured by mutate (may be
// nil), on every transport in parallel.
func runProtocol(t *testing.T, mutate func(*nsqd.Config), body func(t *testing.T, s *server)) {
	t.Parallel()
	for _, transport := range transports {
		t.Run(transport, func(t *testing.T) {
			t.Parallel()
			body(t, startServer(t, transport, mutate))
		})
	}
}

// client is one raw protocol connection.
type client struct {
	t     testing.TB
	nc    net.Conn
	r     *bufio.Reader
	chunk int // > 0: writes go out in pieces of about this many bytes
}

const maxFrame = 16 << 20

// dialRaw connects without sending the magic.
func (s *server) dialRaw(t testing.TB) *client {
	t.Helper()
	nc, err := net.DialTimeout(s.network, s.TCPAddr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s %s: %v", s.network, s.TCPAddr, err)
	}
	nc.SetDeadline(time.Now().Add(30 * time.Second))
	t.Cleanup(func() { nc.Close() })
	return &client{t: t, nc: nc, r: bufio.NewReader(nc)}
}

// dial connects, sends the V2 magic and upgrades to the transport.
func (s *server) dial(t testing.TB) *client {
	t.Helper()
	c := s.dialRaw(t)
	c.write(wire.MagicV2)
	if nc := upgradeTransport(t, c.nc, s.transport, s.pki); nc != c.nc {
		c.nc, c.r = nc, bufio.NewReader(nc)
	}
	return c
}

func (c *client) write(b []byte) {
	c.t.Helper()
	piece := len(b)
	if c.chunk > 0 {
		piece = max(c.chunk, len(b)/256) // byte by byte, but a 1 MiB body in at most 256 writes
	}
	for len(b) > 0 {
		n := min(piece, len(b))
		if _, err := c.nc.Write(b[:n]); err != nil {
			c.t.Fatalf("write %q (%d bytes): %v", b[:min(n, 64)], n, err)
		}
		b = b[n:]
	}
}

// send writes one command.
func (c *client) send(name string, body []byte, params ...string) {
	c.t.Helper()
	c.write(wire.AppendCommand(nil, name, body, params...))
}

func (c *client) closeWrite() {
	c.t.Helper()
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok {
		c.t.Fatalf("%T cannot half-close", c.nc)
	}
	if err := cw.CloseWrite(); err != nil {
		c.t.Fatalf("CloseWrite: %v", err)
	}
}

// frame reads the next frame, heartbeats included.
func (c *client) frame(d time.Duration) (int32, []byte) {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(d))
	typ, data, err := wire.ReadFrame(c.r, maxFrame)
	if err != nil {
		c.t.Fatalf("read frame: %v", err)
	}
	return typ, data
}

// next reads the next frame that is not a heartbeat.
func (c *client) next() (int32, []byte) {
	c.t.Helper()
	for {
		typ, data := c.frame(5 * time.Second)
		if typ != wire.FrameResponse || !bytes.Equal(data, wire.Heartbeat) {
			return typ, data
		}
	}
}

// expect reads the next frame and checks it: text starting with "E_" is an
// error frame, anything else a response frame.
func (c *client) expect(want string) {
	c.t.Helper()
	wantType := wire.FrameResponse
	if strings.HasPrefix(want, "E_") {
		wantType = wire.FrameError
	}
	typ, data := c.next()
	if typ != wantType || string(data) != want {
		c.t.Fatalf("got frame type %d %q, want type %d %q", typ, data, wantType, want)
	}
}

func (c *client) message() wire.Message {
	c.t.Helper()
	typ, data := c.next()
	if typ != wire.FrameMessage {
		c.t.Fatalf("got frame type %d %q, want a message", typ, data)
	}
	m, err := wire.DecodeMessage(data)
	if err != nil {
		c.t.Fatalf("DecodeMessage(%x): %v", data, err)
	}
	return m
}

// expectClosed checks that the server closes the connection without
// sending anything more.
func (c *client) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [512]byte
	n, err := c.r.Read(b[:])
	if n > 0 {
		c.t.Fatalf("got %q, want the connection closed", b[:n])
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		c.t.Fatalf("connection still open after 5s, want it closed")
	}
}

// quiet checks that no frame other than a heartbeat arrives within d.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		c.nc.SetReadDeadline(deadline)
		if _, err := c.r.Peek(1); err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				return
			}
			c.t.Fatalf("connection failed while waiting for quiet: %v", err)
		}
		typ, data := c.frame(5 * time.Second)
		if typ != wire.FrameResponse || !bytes.Equal(data, wire.Heartbeat) {
			c.t.Fatalf("got frame type %d %q, want nothing", typ, data)
		}
	}
}

// ping checks that the connection is usable and that nothing was sent
// before the reply: a PUB must be answered by the very next frame.
func (c *client) ping() {
	c.t.Helper()
	c.send("PUB", []byte("ping"), "alive")
	c.expect("OK")
}

func (c *client) identify(fields string) {
	c.t.Helper()
	c.send("IDENTIFY", []byte(fields))
	c.expect("OK")
}

func (c *client) sub(topic, channel string) {
	c.t.Helper()
	c.send("SUB", nil, topic, channel)
	c.expect("OK")
}

func (c *client) pub(topic, body string) {
	c.t.Helper()
	c.send("PUB", []byte(body), topic)
	c.expect("OK")
}

// channelStats returns one channel's stats with its clients (the zero value
// when it does not exist).
func (s *server) channelStats(topic, channel string) nsqd.ChannelStats {
	st := s.Stats(nsqd.StatsFilter{Topic: topic, Channel: channel, IncludeClients: true})
	for _, ts := range st.Topics {
		for _, cs := range ts.Channels {
			if cs.ChannelName == channel {
				return cs
			}
		}
	}
	return nsqd.ChannelStats{}
}

// consumer returns the stats of a channel's only client.
func (s *server) consumer(t testing.TB, topic, channel string) nsqd.ClientStats {
	t.Helper()
	cs := s.channelStats(topic, channel)
	if len(cs.Clients) != 1 {
		t.Fatalf("%s:%s has %d clients, want 1", topic, channel, len(cs.Clients))
	}
	return cs.Clients[0]
}

func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func line(s string) []byte { return []byte(s + "\n") }

func identifyCmd(js string) []byte { return wire.AppendCommand(nil, "IDENTIFY", []byte(js)) }

func mpubBody(msgs ...string) []byte {
	var bodies [][]byte
	for _, m := range msgs {
		bodies = append(bodies, []byte(m))
	}
	return wire.AppendMPUBBody(nil, bodies)
}

const (
	id0      = "0000000000000000"
	maxMsg   = 1 << 20 // DefaultConfig MaxMsgSize
	maxBody  = 5 << 20 // DefaultConfig MaxBodySize
	tooBig   = maxBody + 1
	msgBig   = maxMsg + 1
	maxCount = (maxBody - 4) / 5 // most MPUB messages a body may declare
)

// commandTests is every command's success reply and error path, with the
// default config. Before in is written the connection is in state: "" just
// connected, "sub" after SUB s c, "closing" after SUB and CLS. want lists
// the frames in order (error frames start with "E_"). fatal: the server
// must close the connection after them; otherwise it must stay usable and
// send nothing more. halfClose: the client shuts its write side after in,
// to see the "failed to read" errors. in is exactly what the server reads,
// so a fatal error never leaves unread bytes behind.
//
// PUB-like commands use topic p; subscribers use topic s, which nothing
// publishes to, so no message frame ever interleaves.
var commandTests = []struct {
	name      string
	state     string
	in        []byte
	want      []string
	fatal     bool
	halfClose bool
}{
	// Framing.
	{name: "NOP", in: line("NOP")},
	{name: "NOP crlf", in: []byte("NOP\r\n")},
	{name: "NOP extra param", in: line("NOP x")},
	{name: "unknown command", in: line("FOO"), want: []string{"E_INVALID invalid command FOO"}, fatal: true},
	{name: "lower-case command", in: line("nop"), want: []string{"E_INVALID invalid command nop"}, fatal: true},
	{name: "empty line", in: line(""), want: []string{"E_INVALID invalid command "}, fatal: true},
	{name: "leading space", in: line(" NOP"), want: []string{"E_INVALID invalid command "}, fatal: true},

	// IDENTIFY.
	{name: "IDENTIFY empty object", in: identifyCmd(`{}`), want: []string{"OK"}},
	{name: "IDENTIFY null", in: identifyCmd(`null`), want: []string{"OK"}},
	{name: "IDENTIFY negotiation false", in: identifyCmd(`{"feature_negotiation":false,"client_id":"c","hostname":"h","user_agent":"u"}`), want: []string{"OK"}},
	{name: "IDENTIFY unknown fields ignored", in: identifyCmd(`{"short_id":"s","long_id":"l","no_such":[1,{"x":null}],"topology_zone":"z"}`), want: []string{"OK"}},
	{name: "IDENTIFY twice", in: cat(identifyCmd(`{}`), identifyCmd(`{}`)), want: []string{"OK", "OK"}},
	{name: "IDENTIFY heartbeat -1", in: identifyCmd(`{"heartbeat_interval":-1}`), want: []string{"OK"}},
	{name: "IDENTIFY heartbeat 0", in: identifyCmd(`{"heartbeat_interval":0}`), want: []string{"OK"}},
	{name: "IDENTIFY heartbeat min", in: identifyCmd(`{"heartbeat_interval":1000}`), want: []string{"OK"}},
	{name: "IDENTIFY heartbeat max", in: identifyCmd(`{"heartbeat_interval":60000}`), want: []string{"OK"}},
	{name: "IDENTIFY heartbeat below min", in: identifyCmd(`{"heartbeat_interval":999}`), want: []string{"E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid"}, fatal: true},
	{name: "IDENTIFY heartbeat above max", in: identifyCmd(`{"heartbeat_interval":60001}`), want: []string{"E_BAD_BODY IDENTIFY heartbeat interval (60001) is invalid"}, fatal: true},
	{name: "IDENTIFY heartbeat -2", in: identifyCmd(`{"heartbeat_interval":-2}`), want: []string{"E_BAD_BODY IDENTIFY heartbeat interval (-2) is invalid"}, fatal: true},
	{name: "IDENTIFY output buffer size -1", in: identifyCmd(`{"output_buffer_size":-1}`), want: []string{"OK"}},
	{name: "IDENTIFY output buffer size min", in: identifyCmd(`{"output_buffer_size":64}`), want: []string{"OK"}},
	{name: "IDENTIFY output buffer size max", in: identifyCmd(`{"output_buffer_size":65536}`), want: []string{"OK"}},
	{name: "IDENTIFY output buffer size below min", in: identifyCmd(`{"output_buffer_size":63}`), want: []string{"E_BAD_BODY IDENTIFY output buffer size (63) is invalid"}, fatal: true},
	{name: "IDENTIFY output buffer size above max", in: identifyCmd(`{"output_buffer_size":65537}`), want: []string{"E_BAD_BODY IDENTIFY output buffer size (65537) is invalid"}, fatal: true},
	{name: "IDENTIFY output buffer size -2", in: identifyCmd(`{"output_buffer_size":-2}`), want: []string{"E_BAD_BODY IDENTIFY output buffer size (-2) is invalid"}, fatal: true},
	{name: "IDENTIFY output buffer timeout -1", in: identifyCmd(`{"output_buffer_timeout":-1}`), want: []string{"OK"}},
	{name: "IDENTIFY output buffer timeout min", in: identifyCmd(`{"output_buffer_timeout":25}`), want: []string{"OK"}},
	{name: "IDENTIFY output buffer timeout max", in: identifyCmd(`{"output_buffer_timeout":30000}`), want: []string{"OK"}},
	{name: "IDENTIFY output buffer timeout below min", in: identifyCmd(`{"output_buffer_timeout":24}`), want: []string{"E_BAD_BODY IDENTIFY output buffer timeout (24) is invalid"}, fatal: true},
	{name: "IDENTIFY output buffer timeout above max", in: identifyCmd(`{"output_buffer_timeout":30001}`), want: []string{"E_BAD_BODY IDENTIFY output buffer timeout (30001) is invalid"}, fatal: true},
	{name: "IDENTIFY output buffer timeout -2", in: identifyCmd(`{"output_buffer_timeout":-2}`), want: []string{"E_BAD_BODY IDENTIFY output buffer timeout (-2) is invalid"}, fatal: true},
	{name: "IDENTIFY output buffer timeout checked before size", in: identifyCmd(`{"output_buffer_timeout":1,"output_buffer_size":1}`), want: []string{"E_BAD_BODY IDENTIFY output buffer timeout (1) is invalid"}, fatal: true},
	{name: "IDENTIFY sample rate 0", in: identifyCmd(`{"sample_rate":0}`), want: []string{"OK"}},
	{name: "IDENTIFY sample rate 99", in: identifyCmd(`{"sample_rate":99}`), want: []string{"OK"}},
	{name: "IDENTIFY sample rate 100", in: identifyCmd(`{"sample_rate":100}`), want: []string{"E_BAD_BODY IDENTIFY sample rate (100) is invalid"}, fatal: true},
	{name: "IDENTIFY sample rate -1", in: identifyCmd(`{"sample_rate":-1}`), want: []string{"E_BAD_BODY IDENTIFY sample rate (-1) is invalid"}, fatal: true},
	{name: "IDENTIFY msg timeout min", in: identifyCmd(`{"msg_timeout":1000}`), want: []string{"OK"}},
	{name: "IDENTIFY msg timeout max", in: identifyCmd(`{"msg_timeout":900000}`), want: []string{"OK"}},
	{name: "IDENTIFY msg timeout below min", in: identifyCmd(`{"msg_timeout":999}`), want: []string{"E_BAD_BODY IDENTIFY msg timeout (999) is invalid"}, fatal: true},
	{name: "IDENTIFY msg timeout above max", in: identifyCmd(`{"msg_timeout":900001}`), want: []string{"E_BAD_BODY IDENTIFY msg timeout (900001) is invalid"}, fatal: true},
	{name: "IDENTIFY msg timeout -1", in: identifyCmd(`{"msg_timeout":-1}`), want: []string{"E_BAD_BODY IDENTIFY msg timeout (-1) is invalid"}, fatal: true},
	{name: "IDENTIFY snappy and deflate", in: identifyCmd(`{"feature_negotiation":true,"snappy":true,"deflate":true}`), want: []string{"E_IDENTIFY_FAILED cannot enable both deflate and snappy compression"}, fatal: true},
	// NSQ checks the pair only while negotiating features.
	{name: "IDENTIFY snappy and deflate without negotiation", in: identifyCmd(`{"snappy":true,"deflate":true}`), want: []string{"OK"}},
	{name: "IDENTIFY bad JSON", in: identifyCmd(`{`), want: []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}, fatal: true},
	{name: "IDENTIFY array", in: identifyCmd(`[]`), want: []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}, fatal: true},
	{name: "IDENTIFY wrong field type", in: identifyCmd(`{"heartbeat_interval":"1000"}`), want: []string{"E_BAD_BODY IDENTIFY failed to decode JSON body"}, fatal: true},
	{name: "IDENTIFY size 0", in: cat(line("IDENTIFY"), be32(0)), want: []string{"E_BAD_BODY IDENTIFY invalid body size 0"}, fatal: true},
	{name: "IDENTIFY size -1", in: cat(line("IDENTIFY"), be32(-1)), want: []string{"E_BAD_BODY IDENTIFY invalid body size -1"}, fatal: true},
	{name: "IDENTIFY too big", in: cat(line("IDENTIFY"), be32(tooBig)), want: []string{fmt.Sprintf("E_BAD_BODY IDENTIFY body too big %d > %d", tooBig, maxBody)}, fatal: true},
	{name: "IDENTIFY truncated size", in: cat(line("IDENTIFY"), []byte{0, 0}), want: []string{"E_BAD_BODY IDENTIFY failed to read body size"}, fatal: true, halfClose: true},
	{name: "IDENTIFY truncated body", in: cat(line("IDENTIFY"), be32(10), []byte("{}")), want: []string{"E_BAD_BODY IDENTIFY failed to read body"}, fatal: true, halfClose: true},
	{name: "IDENTIFY after SUB", state: "sub", in: line("IDENTIFY"), want: []string{"E_INVALID cannot IDENTIFY in current state"}, fatal: true},

	// AUTH (no auth server configured).
	{name: "AUTH disabled", in: wire.AppendCommand(nil, "AUTH", []byte("secret")), want: []string{"E_AUTH_DISABLED AUTH disabled"}, fatal: true},
	{name: "AUTH with a param", in: line("AUTH x"), want: []string{"E_INVALID AUTH invalid number of parameters"}, fatal: true},
	{name: "AUTH after SUB", state: "sub", in: line("AUTH"), want: []string{"E_INVALID cannot AUTH in current state"}, fatal: true},
	{name: "AUTH size 0", in: cat(line("AUTH"), be32(0)), want: []string{"E_BAD_BODY AUTH invalid body size 0"}, fatal: true},
	{name: "AUTH too big", in: cat(line("AUTH"), be32(tooBig)), want: []string{fmt.Sprintf("E_BAD_BODY AUTH body too big %d > %d", tooBig, maxBody)}, fatal: true},
	{name: "AUTH truncated body", in: cat(line("AUTH"), be32(10), []byte("abc")), want: []string{"E_BAD_BODY AUTH failed to read body"}, fatal: true, halfClose: true},

	// SUB.
	{name: "SUB", in: line("SUB s c"), want: []string{"OK"}},
	{name: "SUB ephemeral", in: line("SUB s#ephemeral c#ephemeral"), want: []string{"OK"}},
	{name: "SUB extra param", in: line("SUB s c x"), want: []string{"OK"}},
	{name: "SUB after IDENTIFY", in: cat(identifyCmd(`{"heartbeat_interval":1000}`), line("SUB s c")), want: []string{"OK", "OK"}},
	{name: "SUB twice", state: "sub", in: line("SUB s c"), want: []string{"E_INVALID cannot SUB in current state"}, fatal: true},
	{name: "SUB after CLS", state: "closing", in: line("SUB s c"), want: []string{"E_INVALID cannot SUB in current state"}, fatal: true},
	{name: "SUB heartbeats disabled", in: cat(identifyCmd(`{"heartbeat_interval":-1}`), line("SUB s c")), want: []string{"OK", "E_INVALID cannot SUB with heartbeats disabled"}, fatal: true},
	{name: "SUB heartbeats disabled checked before params", in: cat(identifyCmd(`{"heartbeat_interval":-1}`), line("SUB")), want: []string{"OK", "E_INVALID cannot SUB with heartbeats disabled"}, fatal: true},
	{name: "SUB no params", in: line("SUB"), want: []string{"E_INVALID SUB insufficient number of parameters"}, fatal: true},
	{name: "SUB one param", in: line("SUB s"), want: []string{"E_INVALID SUB insufficient number of parameters"}, fatal: true},
	{name: "SUB bad topic", in: line("SUB ../x c"), want: []string{`E_BAD_TOPIC SUB topic name "../x" is not valid`}, fatal: true},
	{name: "SUB empty topic", in: line("SUB  c"), want: []string{`E_BAD_TOPIC SUB topic name "" is not valid`}, fatal: true},
	{name: "SUB bad channel", in: line("SUB s a/b"), want: []string{`E_BAD_CHANNEL SUB channel name "a/b" is not valid`}, fatal: true},

	// RDY.
	{name: "RDY", state: "sub", in: line("RDY 1")},
	{name: "RDY without count", state: "sub", in: line("RDY")},
	{name: "RDY 0", state: "sub", in: line("RDY 0")},
	{name: "RDY max", state: "sub", in: line("RDY 2500")},
	// NSQ parses RDY, REQ and DPUB numbers with protocol.ByteToBase10:
	// digits only, so "" is 0 and a sign is a parse error.
	{name: "RDY empty count", state: "sub", in: line("RDY ")},
	{name: "RDY above max", state: "sub", in: line("RDY 2501"), want: []string{"E_INVALID RDY count 2501 out of range 0-2500"}, fatal: true},
	{name: "RDY not a number", state: "sub", in: line("RDY x"), want: []string{"E_INVALID RDY could not parse count x"}, fatal: true},
	{name: "RDY negative", state: "sub", in: line("RDY -1"), want: []string{"E_INVALID RDY could not parse count -1"}, fatal: true},
	{name: "RDY plus sign", state: "sub", in: line("RDY +1"), want: []string{"E_INVALID RDY could not parse count +1"}, fatal: true},
	{name: "RDY before SUB", in: line("RDY 1"), want: []string{"E_INVALID cannot RDY in current state"}, fatal: true},
	{name: "RDY after CLS ignored", state: "closing", in: line("RDY 5")},
	{name: "RDY garbage after CLS ignored", state: "closing", in: line("RDY x")},

	// FIN.
	{name: "FIN unknown ID", state: "sub", in: line("FIN " + id0), want: []string{"E_FIN_FAILED FIN " + id0 + " failed ID not in flight"}},
	{name: "FIN non-hex ID", state: "sub", in: line("FIN zzzzzzzzzzzzzzzz"), want: []string{"E_FIN_FAILED FIN zzzzzzzzzzzzzzzz failed ID not in flight"}},
	{name: "FIN upper-case ID", state: "sub", in: line("FIN 0000000000000ABC"), want: []string{"E_FIN_FAILED FIN 0000000000000ABC failed ID not in flight"}},
	{name: "FIN two unknown IDs", state: "sub", in: cat(line("FIN 0000000000000ABC"), line("FIN 0000000000000DEF")),
		want: []string{"E_FIN_FAILED FIN 0000000000000ABC failed ID not in flight", "E_FIN_FAILED FIN 0000000000000DEF failed ID not in flight"}},
	{name: "FIN while closing", state: "closing", in: line("FIN " + id0), want: []string{"E_FIN_FAILED FIN " + id0 + " failed ID not in flight"}},
	{name: "FIN no ID", state: "sub", in: line("FIN"), want: []string{"E_INVALID FIN insufficient number of params"}, fatal: true},
	{name: "FIN short ID", state: "sub", in: line("FIN 000000000000000"), want: []string{"E_INVALID invalid message ID"}, fatal: true},
	{name: "FIN long ID", state: "sub", in: line("FIN 00000000000000000"), want: []string{"E_INVALID invalid message ID"}, fatal: true},
	{name: "FIN before SUB", in: line("FIN " + id0), want: []string{"E_INVALID cannot FIN in current state"}, fatal: true},

	// REQ.
	{name: "REQ unknown ID", state: "sub", in: line("REQ " + id0 + " 0"), want: []string{"E_REQ_FAILED REQ " + id0 + " failed ID not in flight"}},
	{name: "REQ unknown ID delay above max", state: "sub", in: line("REQ " + id0 + " 99999999999"), want: []string{"E_REQ_FAILED REQ " + id0 + " failed ID not in flight"}},
	{name: "REQ while closing", state: "closing", in: line("REQ " + id0 + " 0"), want: []string{"E_REQ_FAILED REQ " + id0 + " failed ID not in flight"}},
	{name: "REQ no delay", state: "sub", in: line("REQ " + id0), want: []string{"E_INVALID REQ insufficient number of params"}, fatal: true},
	{name: "REQ short ID", state: "sub", in: line("REQ 0 0"), want: []string{"E_INVALID invalid message ID"}, fatal: true},
	{name: "REQ bad delay", state: "sub", in: line("REQ " + id0 + " x"), want: []string{"E_INVALID REQ could not parse timeout x"}, fatal: true},
	{name: "REQ negative delay", state: "sub", in: line("REQ " + id0 + " -1"), want: []string{"E_INVALID REQ could not parse timeout -1"}, fatal: true},
	{name: "REQ before SUB", in: line("REQ " + id0 + " 0"), want: []string{"E_INVALID cannot REQ in current state"}, fatal: true},

	// TOUCH.
	{name: "TOUCH unknown ID", state: "sub", in: line("TOUCH " + id0), want: []string{"E_TOUCH_FAILED TOUCH " + id0 + " failed ID not in flight"}},
	{name: "TOUCH while closing", state: "closing", in: line("TOUCH " + id0), want: []string{"E_TOUCH_FAILED TOUCH " + id0 + " failed ID not in flight"}},
	{name: "TOUCH no ID", state: "sub", in: line("TOUCH"), want: []string{"E_INVALID TOUCH insufficient number of params"}, fatal: true},
	{name: "TOUCH short ID", state: "sub", in: line("TOUCH 0"), want: []string{"E_INVALID invalid message ID"}, fatal: true},
	{name: "TOUCH before SUB", in: line("TOUCH " + id0), want: []string{"E_INVALID cannot TOUCH in current state"}, fatal: true},

	// CLS.
	{name: "CLS", state: "sub", in: line("CLS"), want: []string{"CLOSE_WAIT"}},
	{name: "CLS twice", state: "closing", in: line("CLS"), want: []string{"E_INVALID cannot CLS in current state"}, fatal: true},
	{name: "CLS before SUB", in: line("CLS"), want: []string{"E_INVALID cannot CLS in current state"}, fatal: true},

	// PUB.
	{name: "PUB", in: wire.AppendCommand(nil, "PUB", []byte("hello"), "p"), want: []string{"OK"}},
	{name: "PUB max size", in: wire.AppendCommand(nil, "PUB", bytes.Repeat([]byte("x"), maxMsg), "p"), want: []string{"OK"}},
	{name: "PUB binary body", in: wire.AppendCommand(nil, "PUB", []byte("a\nb\x00\r\n"), "p"), want: []string{"OK"}},
	{name: "PUB ephemeral", in: wire.AppendCommand(nil, "PUB", []byte("x"), "p#ephemeral"), want: []string{"OK"}},
	{name: "PUB while subscribed", state: "sub", in: wire.AppendCommand(nil, "PUB", []byte("x"), "p"), want: []string{"OK"}},
	{name: "PUB while closing", state: "closing", in: wire.AppendCommand(nil, "PUB", []byte("x"), "p"), want: []string{"OK"}},
	{name: "PUB no topic", in: line("PUB"), want: []string{"E_INVALID PUB insufficient number of parameters"}, fatal: true},
	{name: "PUB bad topic", in: line("PUB ../x"), want: []string{`E_BAD_TOPIC PUB topic name "../x" is not valid`}, fatal: true},
	{name: "PUB empty topic", in: line("PUB "), want: []string{`E_BAD_TOPIC PUB topic name "" is not valid`}, fatal: true},
	{name: "PUB size 0", in: cat(line("PUB p"), be32(0)), want: []string{"E_BAD_MESSAGE PUB invalid message body size 0"}, fatal: true},
	{name: "PUB size -1", in: cat(line("PUB p"), be32(-1)), want: []string{"E_BAD_MESSAGE PUB invalid message body size -1"}, fatal: true},
	{name: "PUB too big", in: cat(line("PUB p"), be32(msgBig)), want: []string{fmt.Sprintf("E_BAD_MESSAGE PUB message too big %d > %d", msgBig, maxMsg)}, fatal: true},
	{name: "PUB truncated size", in: cat(line("PUB p"), []byte{0, 0}), want: []string{"E_BAD_MESSAGE PUB failed to read message body size"}, fatal: true, halfClose: true},
	{name: "PUB truncated body", in: cat(line("PUB p"), be32(10), []byte("abc")), want: []string{"E_BAD_MESSAGE PUB failed to read message body"}, fatal: true, halfClose: true},

	// DPUB.
	{name: "DPUB", in: wire.AppendCommand(nil, "DPUB", []byte("x"), "p", "1000"), want: []string{"OK"}},
	{name: "DPUB 0", in: wire.AppendCommand(nil, "DPUB", []byte("x"), "p", "0"), want: []string{"OK"}},
	{name: "DPUB max", in: wire.AppendCommand(nil, "DPUB", []byte("x"), "p", "3600000"), want: []string{"OK"}},
	{name: "DPUB above max", in: line("DPUB p 3600001"), want: []string{"E_INVALID DPUB timeout 3600001 out of range 0-3600000"}, fatal: true},
	{name: "DPUB negative", in: line("DPUB p -1"), want: []string{"E_INVALID DPUB could not parse timeout -1"}, fatal: true},
	{name: "DPUB bad timeout", in: line("DPUB p x"), want: []string{"E_INVALID DPUB could not parse timeout x"}, fatal: true},
	{name: "DPUB no timeout", in: line("DPUB p"), want: []string{"E_INVALID DPUB insufficient number of parameters"}, fatal: true},
	{name: "DPUB bad topic", in: line("DPUB a/b 0"), want: []string{`E_BAD_TOPIC DPUB topic name "a/b" is not valid`}, fatal: true},
	{name: "DPUB bad topic checked before timeout", in: line("DPUB a/b x"), want: []string{`E_BAD_TOPIC DPUB topic name "a/b" is not valid`}, fatal: true},
	{name: "DPUB size 0", in: cat(line("DPUB p 0"), be32(0)), want: []string{"E_BAD_MESSAGE DPUB invalid message body size 0"}, fatal: true},
	{name: "DPUB too big", in: cat(line("DPUB p 0"), be32(msgBig)), want: []string{fmt.Sprintf("E_BAD_MESSAGE DPUB message too big %d > %d", msgBig, maxMsg)}, fatal: true},
	{name: "DPUB truncated body", in: cat(line("DPUB p 0"), be32(10), []byte("abc")), want: []string{"E_BAD_MESSAGE DPUB failed to read message body"}, fatal: true, halfClose: true},

	// MPUB.
	{name: "MPUB", in: wire.AppendCommand(nil, "MPUB", mpubBody("a", "bc", "def"), "p"), want: []string{"OK"}},
	{name: "MPUB one", in: wire.AppendCommand(nil, "MPUB", mpubBody("a"), "p"), want: []string{"OK"}},
	{name: "MPUB no topic", in: line("MPUB"), want: []string{"E_INVALID MPUB insufficient number of parameters"}, fatal: true},
	{name: "MPUB bad topic", in: line("MPUB ../x"), want: []string{`E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "../x" is not valid`}, fatal: true},
	{name: "MPUB body size 0", in: cat(line("MPUB p"), be32(0)), want: []string{"E_BAD_BODY MPUB invalid body size 0"}, fatal: true},
	{name: "MPUB body size -1", in: cat(line("MPUB p"), be32(-1)), want: []string{"E_BAD_BODY MPUB invalid body size -1"}, fatal: true},
	{name: "MPUB body too big", in: cat(line("MPUB p"), be32(tooBig)), want: []string{fmt.Sprintf("E_BAD_BODY MPUB body too big %d > %d", tooBig, maxBody)}, fatal: true},
	{name: "MPUB truncated body size", in: cat(line("MPUB p"), []byte{0, 0}), want: []string{"E_BAD_BODY MPUB failed to read body size"}, fatal: true, halfClose: true},
	{name: "MPUB count 0", in: wire.AppendCommand(nil, "MPUB", be32(0), "p"), want: []string{"E_BAD_BODY MPUB invalid message count 0"}, fatal: true},
	{name: "MPUB count -1", in: wire.AppendCommand(nil, "MPUB", be32(-1), "p"), want: []string{"E_BAD_BODY MPUB invalid message count -1"}, fatal: true},
	{name: "MPUB count above max", in: wire.AppendCommand(nil, "MPUB", be32(maxCount+1), "p"), want: []string{fmt.Sprintf("E_BAD_BODY MPUB invalid message count %d", maxCount+1)}, fatal: true},
	{name: "MPUB message size 0", in: wire.AppendCommand(nil, "MPUB", cat(be32(1), be32(0)), "p"), want: []string{"E_BAD_MESSAGE MPUB invalid message(0) body size 0"}, fatal: true},
	{name: "MPUB second message size -1", in: wire.AppendCommand(nil, "MPUB", cat(be32(2), be32(1), []byte("a"), be32(-1)), "p"), want: []string{"E_BAD_MESSAGE MPUB invalid message(1) body size -1"}, fatal: true},
	// NSQ's readMPUB has its own text for a message over --max-msg-size.
	{name: "MPUB message too big", in: wire.AppendCommand(nil, "MPUB", cat(be32(1), be32(msgBig)), "p"), want: []string{fmt.Sprintf("E_BAD_MESSAGE MPUB message too big %d > %d", msgBig, maxMsg)}, fatal: true},
}

// writeModes: every table case also runs with its bytes arriving one at a
// time, so no command may depend on how reads split the stream.
var writeModes = []struct {
	name  string
	chunk int
}{
	{"whole", 0},
	{"bytewise", 1},
}

// setup brings a fresh connection to a commandTests state.
func (c *client) setup(state string) {
	c.t.Helper()
	switch state {
	case "":
	case "sub":
		c.sub("s", "c")
	case "closing":
		c.sub("s", "c")
		c.send("CLS", nil)
		c.expect("CLOSE_WAIT")
	default:
		c.t.Fatalf("unknown state %q", state)
	}
}

func TestProtocolCommands(t *testing.T) {
	runProtocol(t, nil, func(t *testing.T, s *server) {
		for _, mode := range writeModes {
			t.Run(mode.name, func(t *testing.T) {
				t.Parallel()
				for _, tt := range commandTests {
					t.Run(tt.name, func(t *testing.T) {
						t.Parallel()
						c := s.dial(t)
						c.setup(tt.state)
						c.chunk = mode.chunk
						c.write(tt.in)
						if tt.halfClose {
							c.closeWrite()
						}
						for _, want := range tt.want {
							c.expect(want)
						}
						if tt.fatal {
							c.expectClosed()
						} else {
							c.ping()
						}
					})
				}
			})
		}
	})
}

func TestProtocolBadMagic(t *testing.T) {
	runProtocol(t, nil, func(t *testing.T, s *server) {
		for _, magic := range []string{"  V1", "  V3", "GET ", "\x00\x00\x00\x00", "V2  "} {
			t.Run(fmt.Sprintf("%q", magic), func(t *testing.T) {
				c := s.dialRaw(t)
				c.write([]byte(magic))
				c.expect("E_BAD_PROTOCOL")
				c.expectClosed()
			})
		}
	})
}

func TestProtocolHandshakeTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	runProtocol(t, func(cfg *nsqd.Config) { cfg.HandshakeTimeout = timeout }, func(t *testing.T, s *server) {
		for _, sent := range []string{"", "  V"} {
			t.Run(fmt.Sprintf("sent %q", sent), func(t *testing.T) {
				t.Parallel()
				start := time.Now()
				c := s.dialRaw(t)
				c.write([]byte(sent))
				c.expectClosed()
				if d := time.Since(start); d < timeout*2/3 {
					t.Fatalf("closed after %v, before the %v handshake timeout", d, timeout)
				}
			})
		}
		t.Run("magic lifts the deadline", func(t *testing.T) {
			t.Parallel()
			c := s.dial(t)
			c.quiet(2 * timeout)
			c.ping()
		})
	})
}

// TestProtocolLineTooLong: the client reads the error even though it was
// still sending when nsqd gave up on the line (closing a socket with
// unread input would answer with a reset that can destroy the error).
func TestProtocolLineTooLong(t *testing.T) {
	runProtocol(t, nil, func(t *testing.T, s *server) {
		c := s.dial(t)
		c.write(bytes.Repeat([]byte("A"), 256<<10))
		c.expect("E_INVALID command line too long")
		c.expectClosed()
	})
}

// identifyReplyKeys are the fields of NSQ 1.3's feature-negotiation reply.
var identifyReplyKeys = []string{
	"auth_required", "deflate", "deflate_level", "max_deflate_level", "max_msg_timeout", "max_rdy_count",
	"msg_timeout", "output_buffer_size", "output_buffer_timeout", "sample_rate", "snappy", "tls_v1",
	"topology_region", "topology_zone", "version",
}

func TestProtocolIdentifyReply(t *testing.T) {
	defaults := map[string]any{
		"max_rdy_count": 2500.0, "version": "1.3.0", "max_msg_timeout": 900000.0, "msg_timeout": 60000.0,
		"tls_v1": false, "deflate": false, "deflate_level": 6.0, "max_deflate_level": 6.0, "snappy": false,
		"sample_rate": 0.0, "auth_required": false, "output_buffer_size": 16384.0, "output_buffer_timeout": 250.0,
		"topology_region": "", "topology_zone": "",
	}
	tests := []struct {
		name     string
		identify string
		changed  map[string]any
	}{
		{"defaults", `{"feature_negotiation":true}`, nil},
		{"client settings", `{"feature_negotiation":true,"msg_timeout":5000,"sample_rate":42,"output_buffer_size":128,"output_buffer_timeout":100,"heartbeat_interval":2000}`,
			map[string]any{"msg_timeout": 5000.0, "sample_rate": 42.0, "output_buffer_size": 128.0, "output_buffer_timeout": 100.0}},
		{"output buffer size -1 also disables the timeout", `{"feature_negotiation":true,"output_buffer_size":-1,"output_buffer_timeout":100}`,
			map[string]any{"output_buffer_size": 1.0, "output_buffer_timeout": 0.0}},
		{"output buffer timeout -1", `{"feature_negotiation":true,"output_buffer_timeout":-1}`, map[string]any{"output_buffer_timeout": 0.0}},
		{"zeros keep defaults", `{"feature_negotiation":true,"msg_timeout":0,"output_buffer_size":0,"output_buffer_timeout":0,"heartbeat_interval":0}`, nil},
		// NSQ only honours deflate_level when deflate is negotiated.
		{"deflate level without deflate", `{"feature_negotiation":true,"deflate_level":3}`, nil},
		{"unknown fields", `{"feature_negotiation":true,"short_id":"a","long_id":"b","whatever":1}`, nil},
	}
	runProtocol(t, nil, func(t *testing.T, s *server) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				c := s.dial(t)
				c.send("IDENTIFY", []byte(tt.identify))
				typ, data := c.next()
				if typ != wire.FrameResponse {
					t.Fatalf("IDENTIFY %s: got frame type %d %q, want a response", tt.identify, typ, data)
				}
				var got map[string]any
				if err := json.Unmarshal(data, &got); err != nil {
					t.Fatalf("IDENTIFY %s: reply %q is not JSON: %v", tt.identify, data, err)
				}
				if keys := slices.Sorted(maps.Keys(got)); !slices.Equal(keys, identifyReplyKeys) {
					t.Errorf("IDENTIFY reply keys = %q, want %q", keys, identifyReplyKeys)
				}
				want := maps.Clone(defaults)
				maps.Copy(want, tt.changed)
				for k, v := range want {
					if got[k] != v {
						t.Errorf("IDENTIFY %s: reply %s = %v, want %v", tt.identify, k, got[k], v)
					}
				}
				c.ping()
			})
		}
	})
}

var hexID = regexp.MustCompile(`^[0-9a-f]{16}$`)

func TestProtocolMessageFrame(t *testing.T) {
	runProtocol(t, nil, func(t *testing.T, s *server) {
		p := s.dial(t)
		before := time.Now().UnixNano()
		p.pub("t", "first")
		p.send("MPUB", mpubBody("m1", "m2", "m3"), "t")
		p.expect("OK")
		after := time.Now().UnixNano()

		c := s.dial(t)
		c.sub("t", "c")
		c.send("RDY", nil, "1")
		m := c.message()
		if m.Timestamp < before || m.Timestamp > after {
			t.Errorf("timestamp %d not within the publish [%d, %d]", m.Timestamp, before, after)
		}
		if m.Attempts != 1 || string(m.Body) != "first" || !hexID.Match(m.ID[:]) {
			t.Fatalf("first delivery: attempts %d id %q body %q; want 1, 16 hex digits, %q", m.Attempts, m.ID[:], m.Body, "first")
		}

		c.send("REQ", nil, string(m.ID[:]), "0")
		again := c.message()
		if again.ID != m.ID || again.Timestamp != m.Timestamp || again.Attempts != 2 || string(again.Body) != "first" {
			t.Fatalf("after REQ 0: %+v; want the same message with attempts 2 (first was %+v)", again, m)
		}
		if cs := s.channelStats("t", "c"); cs.RequeueCount != 1 {
			t.Errorf("requeue_count = %d, want 1", cs.RequeueCount)
		}

		// FIN the rest in order; IDs grow with publish order.
		prev := again
		c.send("FIN", nil, string(again.ID[:]))
		for _, body := range []string{"m1", "m2", "m3"} {
			m := c.message()
			if string(m.Body) != body || m.Attempts != 1 || string(m.ID[:]) <= string(prev.ID[:]) {
				t.Fatalf("got %q attempts %d id %s after id %s; want %q attempts 1 and a larger id", m.Body, m.Attempts, m.ID[:], prev.ID[:], body)
			}
			c.send("FIN", nil, string(m.ID[:]))
			prev = m
		}
		c.ping()
		cl := s.consumer(t, "t", "c")
		if cl.FinishCount != 4 || cl.InFlightCount != 0 || cl.MessageCount != 5 || cl.RequeueCount != 1 {
			t.Errorf("client stats finish %d in flight %d messages %d requeues %d; want 4, 0, 5, 1",
				cl.FinishCount, cl.InFlightCount, cl.MessageCount, cl.RequeueCount)
		}
	})
}

func TestProtocolRDY(t *testing.T) {
	runProtocol(t, nil, func(t *testing.T, s *server) {
		t.Run("without count means 1", func(t *testing.T) {
			p := s.dial(t)
			p.send("MPUB", mpubBody("a", "b", "c"), "one")
			p.expect("OK")
			c := s.dial(t)
			c.sub("one", "c")
			c.send("RDY", nil)
			m := c.message()
			c.quiet(200 * time.Millisecond)
			if cl := s.consumer(t, "one", "c"); cl.ReadyCount != 1 || cl.InFlightCount != 1 {
				t.Fatalf("after RDY: ready %d in flight %d, want 1, 1", cl.ReadyCount, cl.InFlightCount)
			}
			c.send("FIN", nil, string(m.ID[:]))
			if m2 := c.message(); string(m2.Body) != "b" {
				t.Fatalf("after FIN got %q, want %q", m2.Body, "b")
			}
		})
		t.Run("0 stops delivery", func(t *testing.T) {
			c := s.dial(t)
			c.sub("zero", "c")
			c.send("RDY", nil, "5")
			c.send("RDY", nil, "0")
			c.ping()
			c.pub("zero", "x")
			c.quiet(200 * time.Millisecond)
			if cs := s.channelStats("zero", "c"); cs.Depth != 1 || cs.InFlightCount != 0 || cs.Clients[0].ReadyCount != 0 {
				t.Fatalf("after RDY 0: depth %d in flight %d ready %d, want 1, 0, 0", cs.Depth, cs.InFlightCount, cs.Clients[0].ReadyCount)
			}
			c.send("RDY", nil, "1")
			if m := c.message(); string(m.Body) != "x" {
				t.Fatalf("after RDY 1 got %q", m.Body)
			}
		})
	})
}

func TestProtocolREQClamped(t *testing.T) {
	const maxReq = time.Second
	runProtocol(t, func(cfg *nsqd.Config) { cfg.MaxReqTimeout = maxReq }, func(t *testing.T, s *server) {
		c := s.dial(t)
		c.sub("t", "c")
		c.pub("t", "x")
		c.send("RDY", nil, "1")
		m := c.message()
		start := time.Now()
		c.send("REQ", nil, string(m.ID[:]), "99999999") // ~28 hours: clamped, not an error
		c.ping()
		if cs := s.channelStats("t", "c"); cs.DeferredCount != 1 || cs.RequeueCount != 1 {
			t.Errorf("after REQ: deferred %d requeues %d, want 1, 1", cs.DeferredCount, cs.RequeueCount)
		}
		again := c.message()
		if d := time.Since(start); again.ID != m.ID || again.Attempts != 2 || d < maxReq*3/4 {
			t.Fatalf("redelivered %s attempts %d after %v; want %s attempts 2 after about %v", again.ID[:], again.Attempts, d, m.ID[:], maxReq)
		}
	})
}

func TestProtocolDPUB(t *testing.T) {
	runProtocol(t, nil, func(t *testing.T, s *server) {
		c := s.dial(t)
		c.sub("t", "c")
		c.send("RDY", nil, "10")
		start := time.Now()
		c.send("DPUB", []byte("later"), "t", "300")
		c.expect("OK")
		c.send("DPUB", []byte("now"), "t", "0")
		c.expect("OK")
		if m := c.message(); string(m.Body) != "now" {
			t.Fatalf("first delivery %q, want the DPUB 0 message", m.Body)
		}
		m := c.message()
		if d := time.Since(start); string(m.Body) != "later" || d < 250*time.Millisecond {
			t.Fatalf("got %q after %v, want %q after 300ms", m.Body, d, "later")
		}
	})
}

func TestProtocolInFlightTimeout(t *testing.T) {
	runProtocol(t, nil, func(t *testing.T, s *server) {
		c := s.dial(t)
		c.identify(`{"msg_timeout":1000}`)
		c.sub("t", "c")
		c.pub("t", "x")
		c.send("RDY", nil, "2")
		m := c.message()
		start := time.Now()
		again := c.message()
		if d := time.Since(start); again.ID != m.ID || again.Attempts != 2 || d < 800*time.Millisecond {
			t.Fatalf("redelivered %s attempts %d after %v; want %s attempts 2 after the 1s msg_timeout", again.ID[:], again.Attempts, d, m.ID[:])
		}
		if cs := s.channelStats("t", "c"); cs.TimeoutCount != 1 || cs.InFlightCount != 1 {
			t.Fatalf("timeout_count %d in flight %d, want 1, 1", cs.TimeoutCount, cs.InFlightCount)
		}
		c.send("FIN", nil, string(again.ID[:]))
		c.ping()
	})
}

// TOUCH pushes the deadline to now + msg_timeout, but never past delivery +
// max-msg-timeout.
func TestProtocolTouch(t *testing.T) {
	const msgTimeout, maxMsgTimeout = time.Second, 1500 * time.Millisecond
	mutate := func(cfg *nsqd.Config) { cfg.MsgTimeout, cfg.MaxMsgTimeout = msgTimeout, maxMsgTimeout }
	runProtocol(t, mutate, func(t *testing.T, s *server) {
		c := s.dial(t)
		c.sub("t", "c")
		c.pub("t", "x")
		c.send("RDY", nil, "1")
		m := c.message()
		start := time.Now()
		tick := time.NewTicker(msgTimeout / 5)
		defer tick.Stop()
		for time.Since(start) < maxMsgTimeout*9/10 {
			<-tick.C
			c.send("TOUCH", nil, string(m.ID[:]))
			if time.Since(start) > msgTimeout*6/5 {
				if cs := s.channelStats("t", "c"); cs.TimeoutCount != 0 || cs.InFlightCount != 1 {
					t.Fatalf("touched message timed out after %v (timeout_count %d in flight %d)", time.Since(start), cs.TimeoutCount, cs.InFlightCount)
				}
			}
		}
		// Without the cap the last TOUCH (at ~1.4s) would hold it until ~2.4s.
		again := c.message()
		if d := time.Since(start); again.ID != m.ID || again.Attempts != 2 || d > maxMsgTimeout+msgTimeout*6/10 {
			t.Fatalf("redelivered %s attempts %d after %v; want %s attempts 2 at the %v cap", again.ID[:], again.Attempts, d, m.ID[:], maxMsgTimeout)
		}
	})
}

func TestProtocolCLS(t *testing.T) {
	runProtocol(t, nil, func(t *testing.T, s *server) {
		c := s.dial(t)
		c.sub("t", "c")
		c.send("RDY", nil, "10")
		c.pub("t", "before")
		m := c.message()
		c.send("CLS", nil)
		c.expect("CLOSE_WAIT")
		if cl := s.consumer(t, "t", "c"); cl.State != 4 || cl.ReadyCount != 0 {
			t.Errorf("after CLS: state %d ready %d, want 4 (closing), 0", cl.State, cl.ReadyCount)
		}
		c.pub("t", "after")
		c.send("RDY", nil, "5") // ignored while closing
		c.quiet(300 * time.Millisecond)
		c.send("FIN", nil, string(m.ID[:])) // in-flight messages can still be finished
		c.ping()
		if cs := s.channelStats("t", "c"); cs.Depth != 1 || cs.InFlightCount != 0 {
			t.Fatalf("after CLS: depth %d in flight %d, want 1, 0", cs.Depth, cs.InFlightCount)
		}
	})
}

func TestProtocolHeartbeat(t *testing.T) {
	const interval = time.Second
	runProtocol(t, nil, func(t *testing.T, s *server) {
		c := s.dial(t)
		c.identify(`{"heartbeat_interval":1000}`)
		start := time.Now()
		// Answer each heartbeat with a NOP for longer than the read deadline
		// (2 intervals): the connection stays up.
		beats := 0
		for time.Since(start) < 2*interval+interval/2 {
			typ, data := c.frame(2 * interval)
			if typ != wire.FrameResponse || !bytes.Equal(data, wire.Heartbeat) {
				t.Fatalf("got frame type %d %q, want a _heartbeat_ response", typ, data)
			}
			beats++
			c.send("NOP", nil)
		}
		if beats < 2 {
			t.Fatalf("%d heartbeats in %v with a %v interval", beats, time.Since(start), interval)
		}
		c.ping()
		// Now say nothing: the server hangs up after about 2 intervals.
		silent := time.Now()
		c.nc.SetReadDeadline(time.Now().Add(4 * interval))
		for {
			typ, data, err := wire.ReadFrame(c.r, maxFrame)
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Fatalf("still connected %v after the last command", time.Since(silent))
				}
				break
			}
			if typ != wire.FrameResponse || !bytes.Equal(data, wire.Heartbeat) {
				t.Fatalf("got frame type %d %q, want a _heartbeat_ response", typ, data)
			}
		}
		if d := time.Since(silent); d < 2*interval*9/10 {
			t.Fatalf("disconnected %v after the last command, before 2 heartbeat intervals", d)
		}
	})
}

// Messages wait in the output buffer until the buffer timeout, unless the
// client stops being ready or buffering is off.
func TestProtocolOutputBuffer(t *testing.T) {
	tests := []struct {
		name     string
		identify string
		rdy      string
		slow     bool // held until the 2s timeout
	}{
		{"flushed by the timeout", `{"output_buffer_timeout":2000}`, "10", true},
		{"flushed when RDY is reached", `{"output_buffer_timeout":5000}`, "1", false},
		{"timeout -1", `{"output_buffer_timeout":-1}`, "10", false},
		{"size -1", `{"output_buffer_size":-1,"output_buffer_timeout":5000}`, "10", false},
	}
	runProtocol(t, nil, func(t *testing.T, s *server) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				topic := fmt.Sprint("t", i)
				c := s.dial(t)
				c.identify(tt.identify)
				c.sub(topic, "c")
				c.send("RDY", nil, tt.rdy)
				c.ping()
				start := time.Now()
				s.dial(t).pub(topic, "x")
				c.message()
				d := time.Since(start)
				if tt.slow && d < time.Second {
					t.Fatalf("message arrived after %v, want it held about 2s by the output buffer", d)
				}
				if !tt.slow && d > time.Second {
					t.Fatalf("message arrived after %v, want it flushed at once", d)
				}
			})
		}
		t.Run("flushed before a response", func(t *testing.T) {
			t.Parallel()
			c := s.dial(t)
			c.identify(`{"output_buffer_timeout":5000}`)
			c.sub("resp", "c")
			c.send("RDY", nil, "10")
			c.ping()
			s.dial(t).pub("resp", "x")
			nsqtest.Eventually(t, 2*time.Second, "the message in flight", func() bool {
				return s.channelStats("resp", "c").InFlightCount == 1
			})
			start := time.Now()
			c.send("PUB", []byte("y"), "other")
			c.message()
			c.expect("OK")
			if d := time.Since(start); d > time.Second {
				t.Fatalf("buffered message and response took %v", d)
			}
		})
	})
}

func TestProtocolMaxChannelConsumers(t *testing.T) {
	runProtocol(t, func(cfg *nsqd.Config) { cfg.MaxChannelConsumers = 1 }, func(t *testing.T, s *server) {
		first := s.dial(t)
		first.sub("t", "c")
		second := s.dial(t)
		second.send("SUB", nil, "t", "c")
		second.expect("E_SUB_FAILED SUB failed consumers for t:c exceeds limit of 1")
		second.expectClosed()
		s.dial(t).sub("t", "other") // the limit is per channel

		first.nc.Close()
		nsqtest.Eventually(t, 2*time.Second, "the first consumer to leave", func() bool {
			return s.channelStats("t", "c").ClientCount == 0
		})
		s.dial(t).sub("t", "c")
	})
}

// Names that are not NSQ names are refused before anything is created, so
// no name can reach the file system.
func TestProtocolNamesRefused(t *testing.T) {
	names := []string{"../x", "a/b", "/etc", `..\x`, "x:y", "a\x00b", "#ephemeral", "x#ephemeral#ephemeral",
		strings.Repeat("x", 65), strings.Repeat("x", 55) + "#ephemeral"}
	runProtocol(t, nil, func(t *testing.T, s *server) {
		for _, name := range names {
			q := fmt.Sprintf("%q", name)
			for _, tt := range []struct {
				in   []byte
				want string
			}{
				{wire.AppendCommand(nil, "PUB", []byte("x"), name), `E_BAD_TOPIC PUB topic name ` + q + ` is not valid`},
				{wire.AppendCommand(nil, "DPUB", []byte("x"), name, "0"), `E_BAD_TOPIC DPUB topic name ` + q + ` is not valid`},
				{wire.AppendCommand(nil, "MPUB", mpubBody("x"), name), `E_BAD_TOPIC E_BAD_TOPIC MPUB topic name ` + q + ` is not valid`},
				{line("SUB " + name + " c"), `E_BAD_TOPIC SUB topic name ` + q + ` is not valid`},
				{line("SUB t " + name), `E_BAD_CHANNEL SUB channel name ` + q + ` is not valid`},
			} {
				c := s.dial(t)
				c.write(tt.in)
				c.expect(tt.want)
				c.expectClosed()
			}
		}
		if st := s.Stats(nsqd.StatsFilter{}); len(st.Topics) != 0 {
			t.Fatalf("refused names created topics: %+v", st.Topics)
		}
		parent := filepath.Dir(s.Config.DataPath)
		if m, _ := filepath.Glob(filepath.Join(parent, "x*")); len(m) > 0 {
			t.Fatalf("refused names created files outside the data path: %q", m)
		}
	})
}

// A whole session (publish, subscribe, receive, finish) written in one
// write and byte by byte.
func TestProtocolSession(t *testing.T) {
	runProtocol(t, nil, func(t *testing.T, s *server) {
		for _, mode := range writeModes {
			t.Run(mode.name, func(t *testing.T) {
				topic := mode.name
				c := s.dial(t)
				c.chunk = mode.chunk
				c.write(cat(
					identifyCmd(`{"client_id":"x","feature_negotiation":false,"heartbeat_interval":5000}`),
					wire.AppendCommand(nil, "PUB", []byte("a"), topic),
					wire.AppendCommand(nil, "MPUB", mpubBody("b", "c"), topic),
					wire.AppendCommand(nil, "DPUB", []byte("d"), topic, "0"),
					line("NOP"),
					line("SUB "+topic+" c"),
					line("RDY 4"),
				))
				for range 5 {
					c.expect("OK")
				}
				var fins []byte
				for _, want := range []string{"a", "b", "c", "d"} {
					m := c.message()
					if string(m.Body) != want {
						t.Fatalf("got %q, want %q", m.Body, want)
					}
					fins = append(fins, line("FIN "+string(m.ID[:]))...)
				}
				c.write(fins)
				c.ping()
				cl := s.consumer(t, topic, "c")
				if cl.FinishCount != 4 || cl.InFlightCount != 0 {
					t.Fatalf("finish %d in flight %d, want 4, 0", cl.FinishCount, cl.InFlightCount)
				}
				c.send("CLS", nil)
				c.expect("CLOSE_WAIT")
			})
		}
	})
}
