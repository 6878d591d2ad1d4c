package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// Buffer sizes of every connection, client and server side. Large buffers
// turn many small frames into few system calls.
const (
	readBufferSize  = 256 << 10
	writeBufferSize = 64 << 10
)

// maxFrameSize bounds a frame a client accepts (NSQ's default max-msg-size
// plus the message header, with room to spare).
const maxFrameSize = 16 << 20

// deadlineConn sets a fresh deadline before every Read and Write on the
// underlying connection. bufio calls Read once per refill and Write once per
// flush, so that is one deadline per batch, not per frame.
type deadlineConn struct {
	net.Conn
	timeout time.Duration
}

func (c deadlineConn) Read(p []byte) (int, error) {
	if err := c.Conn.SetReadDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Read(p)
}

func (c deadlineConn) Write(p []byte) (int, error) {
	if err := c.Conn.SetWriteDeadline(time.Now().Add(c.timeout)); err != nil {
		return 0, err
	}
	return c.Conn.Write(p)
}

// client is one protocol V2 connection to a server. Only one goroutine reads.
// Writes are serialised by wmu because a consumer's stop (CLS) is written
// from another goroutine.
type client struct {
	nc  net.Conn
	r   *bufio.Reader
	wmu sync.Mutex
	w   *bufio.Writer
	big []byte // frames larger than r's buffer are read into this

	// timeout bounds every read and write, and also how long a reply
	// may take while the server sends only heartbeats.
	timeout time.Duration
}

// dial connects to addr and sends the V2 magic.
func dial(ctx context.Context, addr string, timeout time.Duration) (*client, error) {
	d := net.Dialer{Timeout: timeout}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	dc := deadlineConn{Conn: nc, timeout: timeout}
	c := &client{
		nc:      nc,
		r:       bufio.NewReaderSize(dc, readBufferSize),
		w:       bufio.NewWriterSize(dc, writeBufferSize),
		timeout: timeout,
	}
	c.w.Write(wire.MagicV2)
	if err := c.w.Flush(); err != nil {
		nc.Close()
		return nil, fmt.Errorf("send magic to %s: %w", addr, err)
	}
	return c, nil
}

func (c *client) Close() error { return c.nc.Close() }

// readFrame returns the next frame. data aliases the reader's buffer and is
// valid until the next read; no allocation is made for frames that fit in
// the buffer.
func (c *client) readFrame() (typ int32, data []byte, err error) {
	hdr, err := c.r.Peek(wire.FrameHeaderLength)
	if err != nil {
		return 0, nil, err
	}
	size := int(int32(binary.BigEndian.Uint32(hdr)))
	typ = int32(binary.BigEndian.Uint32(hdr[4:]))
	if size < 4 || size-4 > maxFrameSize {
		return 0, nil, fmt.Errorf("bad frame size %d", size)
	}
	total := 4 + size
	if total <= c.r.Size() {
		b, err := c.r.Peek(total)
		if err != nil {
			return 0, nil, err
		}
		c.r.Discard(total)
		return typ, b[wire.FrameHeaderLength:], nil
	}
	c.r.Discard(wire.FrameHeaderLength)
	if cap(c.big) < size-4 {
		c.big = make([]byte, size-4)
	}
	data = c.big[:size-4]
	if _, err := io.ReadFull(c.r, data); err != nil {
		return 0, nil, err
	}
	return typ, data, nil
}

// frameBuffered reports whether a whole frame is already buffered, that is
// whether the next readFrame will return without waiting for the network.
func (c *client) frameBuffered() bool {
	n := c.r.Buffered()
	if n < 4 {
		return false
	}
	hdr, _ := c.r.Peek(4)
	return n >= 4+int(binary.BigEndian.Uint32(hdr))
}

// serverError is an error frame sent by the server.
type serverError struct{ text string }

func (e *serverError) Error() string { return "server replied " + e.text }

// isHeartbeat reports whether a response frame is a heartbeat.
func isHeartbeat(data []byte) bool { return bytes.Equal(data, wire.Heartbeat) }

var nopCommand = []byte("NOP\n")

// response waits for the next response frame that is not a heartbeat
// (answering heartbeats with NOP) and returns a copy of it. It is used
// during setup, where message frames are not expected.
func (c *client) response() ([]byte, error) {
	deadline := time.Now().Add(c.timeout)
	for {
		typ, data, err := wire.ReadFrame(c.r, maxFrameSize)
		if err != nil {
			return nil, err
		}
		switch typ {
		case wire.FrameResponse:
			if isHeartbeat(data) {
				if time.Now().After(deadline) {
					return nil, errNoReply
				}
				if err := c.send(nopCommand); err != nil {
					return nil, err
				}
				continue
			}
			return data, nil
		case wire.FrameError:
			return nil, &serverError{string(data)}
		default:
			return nil, fmt.Errorf("unexpected frame type %d before subscribing", typ)
		}
	}
}

// send writes b and flushes.
func (c *client) send(b []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.w.Write(b)
	return c.w.Flush()
}

// identify sends IDENTIFY with feature negotiation plus extra fields and
// returns the server's max_rdy_count (0 when the server did not say).
// The heartbeat interval is half the read timeout, so a healthy server
// that has nothing to send still keeps an idle connection's reads within
// their deadline.
func (c *client) identify(timeout time.Duration, extra map[string]any) (maxRDY int, err error) {
	req := map[string]any{
		"feature_negotiation": true,
		"client_id":           "nsq_bench",
		"hostname":            "nsq_bench",
		"user_agent":          "nsq_bench",
		"heartbeat_interval":  min(max(timeout/2, time.Second), time.Minute).Milliseconds(),
	}
	for k, v := range extra {
		req[k] = v
	}
	body, err := json.Marshal(req)
	if err != nil {
		return 0, err
	}
	if err := c.send(wire.AppendCommand(nil, "IDENTIFY", body)); err != nil {
		return 0, fmt.Errorf("IDENTIFY: %w", err)
	}
	resp, err := c.response()
	if err != nil {
		return 0, fmt.Errorf("IDENTIFY: %w", err)
	}
	if bytes.Equal(resp, wire.OK) {
		return 0, nil
	}
	var reply struct {
		MaxRDYCount int `json:"max_rdy_count"`
	}
	if err := json.Unmarshal(resp, &reply); err != nil {
		return 0, fmt.Errorf("IDENTIFY reply %q: %w", resp, err)
	}
	return reply.MaxRDYCount, nil
}

// subscribe sends SUB and waits for its OK.
func (c *client) subscribe(topic, channel string) error {
	if err := c.send(wire.AppendCommand(nil, "SUB", nil, topic, channel)); err != nil {
		return fmt.Errorf("SUB: %w", err)
	}
	resp, err := c.response()
	if err != nil {
		return fmt.Errorf("SUB %s %s: %w", topic, channel, err)
	}
	if !bytes.Equal(resp, wire.OK) {
		return fmt.Errorf("SUB %s %s: unexpected reply %q", topic, channel, resp)
	}
	return nil
}

// errNoReply is returned when a server keeps a connection alive with
// heartbeats but does not answer within the timeout.
var errNoReply = errors.New("no reply within the timeout (only heartbeats)")
