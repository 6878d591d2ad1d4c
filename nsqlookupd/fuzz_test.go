package nsqlookupd

import (
	"bytes"
	"encoding/binary"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// splitConn is an in-memory peerConn whose reads return the input in the
// chunk sizes given by splits (cycled), so one command can arrive over
// several reads and several commands in one.
type splitConn struct {
	in     []byte
	splits []byte
	n      int
	out    bytes.Buffer
}

func (c *splitConn) Read(p []byte) (int, error) {
	if len(c.in) == 0 {
		return 0, io.EOF
	}
	size := len(c.in)
	if len(c.splits) > 0 {
		size = 1 + int(c.splits[c.n%len(c.splits)])
		c.n++
	}
	size = min(size, len(p), len(c.in))
	copy(p, c.in[:size])
	c.in = c.in[size:]
	return size, nil
}

func (c *splitConn) Write(p []byte) (int, error)      { return c.out.Write(p) }
func (c *splitConn) SetReadDeadline(time.Time) error  { return nil }
func (c *splitConn) SetWriteDeadline(time.Time) error { return nil }

const fuzzReply = `{"broadcast_address":"fuzz","hostname":"fuzz","http_port":1,"tcp_port":2,"version":"1.3.0"}`

// runV1 plays input through a V1 connection on a fresh registry and
// returns what it sent back, and the registry afterwards.
func runV1(input, splits []byte) ([]byte, *registry) {
	s := &Server{
		cfg:           &Config{HandshakeTimeout: time.Minute, IdleTimeout: time.Minute},
		log:           slog.New(slog.DiscardHandler),
		reg:           newRegistry(time.Minute, time.Minute, time.Now),
		identifyReply: []byte(fuzzReply),
	}
	conn := &splitConn{in: input, splits: splits}
	s.newV1Conn(conn, "192.0.2.1:4150").serve()
	return conn.out.Bytes(), s.reg
}

// FuzzV1 drives the V1 command parser and handler with arbitrary input
// split across reads in arbitrary places. Whatever the input:
//   - the output is a sequence of well-formed size-prefixed responses;
//   - only the last response may be an error, since all errors are fatal;
//   - every other response is OK or the IDENTIFY reply;
//   - how the input is split does not change the output;
//   - once the connection ends, the peer has no registration left and no
//     ephemeral registration survives it.
func FuzzV1(f *testing.F) {
	for _, tc := range v1Cases {
		f.Add([]byte(tc.input), []byte{})
		f.Add([]byte(tc.input), []byte{0})       // one byte per read
		f.Add([]byte(tc.input), []byte{2, 0, 6}) // ragged
	}
	f.Add([]byte("  V1"+identifyCmd(okBody)+"REGISTER t#ephemeral c#ephemeral\nREGISTER t#ephemeral d\nUNREGISTER t#ephemeral\n"), []byte{3})
	f.Add([]byte("  V1"+identifyCmd(okBody)+"REGISTER a b\nUNREGISTER a b\nREGISTER a\nPING\n"), []byte{1, 7})
	f.Add([]byte("  V1IDENTIFY\n\x7f\xff\xff\xff"), []byte{0})

	f.Fuzz(func(t *testing.T, input, splits []byte) {
		out, reg := runV1(input, splits)
		whole, _ := runV1(input, nil)
		if !bytes.Equal(out, whole) {
			t.Fatalf("output depends on read boundaries:\nsplit %q\nwhole %q", out, whole)
		}

		rest := out
		for i := 0; len(rest) > 0; i++ {
			if len(rest) < 4 {
				t.Fatalf("truncated size prefix in %q", out)
			}
			n := binary.BigEndian.Uint32(rest)
			if uint64(n) > uint64(len(rest)-4) {
				t.Fatalf("response %d claims %d bytes, %d left, in %q", i, n, len(rest)-4, out)
			}
			data := string(rest[4 : 4+n])
			rest = rest[4+n:]
			switch {
			case strings.HasPrefix(data, "E_"):
				if len(rest) > 0 {
					t.Fatalf("response %d %q is an error but more followed: %q", i, data, rest)
				}
			case data == string(wire.OK), data == fuzzReply:
			default:
				t.Fatalf("response %d is %q, neither OK, the IDENTIFY reply nor an error", i, data)
			}
		}

		if d := reg.debug(); len(d) != 0 {
			t.Fatalf("registrations left with producers after disconnect: %v", d)
		}
		for _, topic := range reg.topicNames() {
			if wire.IsEphemeral(topic) {
				t.Fatalf("ephemeral topic %q survived its producers", topic)
			}
			for _, ch := range reg.channelNames(topic) {
				if wire.IsEphemeral(ch) {
					t.Fatalf("ephemeral channel %q/%q survived its producers", topic, ch)
				}
			}
		}
	})
}
