package nsqlookupd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"time"

	"github.com/nsqx/nsqx/wire"
)

const (
	// lineBufferSize bounds a command line. The longest legal one,
	// "UNREGISTER <64-byte topic> <64-byte channel>", is 141 bytes.
	lineBufferSize = 1024
	// maxIdentifySize bounds the IDENTIFY body; nsqd sends about 200 bytes.
	// NSQ allocates whatever size the peer announces.
	maxIdentifySize = 64 << 10
	// writeTimeout bounds each response write, so a peer that stops reading
	// cannot pin its goroutine.
	writeTimeout = 5 * time.Second
	// lingerTimeout and lingerBytes bound how long and how much unread input
	// is drained after a fatal error, before closing. Closing a socket with
	// unread input sends a TCP reset, which can destroy the error message
	// before the peer reads it.
	lingerTimeout = 500 * time.Millisecond
	lingerBytes   = 64 << 10
)

// peerConn is what a V1 session needs from its connection: a net.Conn in
// the server, an in-memory fake in the fuzz test.
type peerConn interface {
	io.ReadWriter
	SetReadDeadline(t time.Time) error
	SetWriteDeadline(t time.Time) error
}

// cmdError is a V1 error: what the peer is sent, and the underlying cause
// for the log (nil when the peer's own input explains it). Every V1 error
// is fatal.
type cmdError struct {
	sent  *wire.Error
	cause error
}

func fail(code, desc string, cause error) *cmdError {
	return &cmdError{sent: wire.Fatal(code, desc), cause: cause}
}

// v1Conn is one nsqd's connection: the magic, then one command at a time,
// each answered before the next is read. It is used by one goroutine only.
// When it ends, every registration its peer made is removed.
type v1Conn struct {
	reg       *registry
	log       *slog.Logger
	reply     []byte        // the IDENTIFY reply, built once by New
	handshake time.Duration // deadline for the magic
	idle      time.Duration // deadline for each command

	conn   peerConn
	remote string
	r      *bufio.Reader
	out    []byte   // response buffer, reused
	params [][]byte // command fields, reused
	peer   *peer    // set by IDENTIFY
}

func (s *Server) newV1Conn(conn peerConn, remote string) *v1Conn {
	return &v1Conn{
		reg:       s.reg,
		log:       s.log,
		reply:     s.identifyReply,
		handshake: s.cfg.HandshakeTimeout,
		idle:      s.cfg.IdleTimeout,
		conn:      conn,
		remote:    remote,
		r:         bufio.NewReaderSize(conn, lineBufferSize),
	}
}

// serve runs the connection until the peer leaves, a command fails or a
// deadline passes. The caller closes the connection afterwards.
func (c *v1Conn) serve() {
	defer c.unregisterAll()
	if !c.readMagic() {
		return
	}
	for {
		c.conn.SetReadDeadline(time.Now().Add(c.idle))
		line, err := wire.ReadLine(c.r)
		if err != nil {
			c.readFailed(err)
			return
		}
		resp, cerr := c.exec(line)
		if cerr != nil {
			attrs := []any{"remote_addr", c.remote, "err", cerr.sent.Error()}
			if cerr.cause != nil {
				attrs = append(attrs, "cause", cerr.cause)
			}
			c.log.Warn("closing connection after protocol error", attrs...)
			c.fatal([]byte(cerr.sent.Error()))
			return
		}
		if err := c.send(resp); err != nil {
			c.log.Info("closing connection after write error", "remote_addr", c.remote, "err", err)
			return
		}
	}
}

// readMagic reads the protocol magic. A wrong magic is answered with
// E_BAD_PROTOCOL, exactly as NSQ does; a peer that does not send four bytes
// within the handshake timeout is told why it is being dropped.
func (c *v1Conn) readMagic() bool {
	c.conn.SetReadDeadline(time.Now().Add(c.handshake))
	var magic [4]byte
	if _, err := io.ReadFull(c.r, magic[:]); err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) {
			c.log.Info("closing connection: no protocol magic", "remote_addr", c.remote, "timeout", c.handshake)
			c.fatal([]byte(wire.ErrBadProtocol + " no protocol magic within " + c.handshake.String()))
			return false
		}
		c.log.Info("closing connection: failed to read protocol magic", "remote_addr", c.remote, "err", err)
		return false
	}
	if !bytes.Equal(magic[:], wire.MagicV1) {
		c.log.Info("closing connection: bad protocol magic", "remote_addr", c.remote, "magic", string(magic[:]))
		c.fatal([]byte(wire.ErrBadProtocol))
		return false
	}
	return true
}

// readFailed reports why a command line could not be read: the peer left,
// went silent, or sent a line longer than the buffer.
func (c *v1Conn) readFailed(err error) {
	switch {
	case errors.Is(err, wire.ErrLineTooLong):
		c.log.Warn("closing connection: command line too long", "remote_addr", c.remote, "limit", lineBufferSize)
		c.fatal([]byte(wire.ErrInvalid + " command line longer than " + strconv.Itoa(lineBufferSize) + " bytes"))
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.log.Info("closing idle connection", "remote_addr", c.remote, "timeout", c.idle)
		c.fatal([]byte(wire.ErrInvalid + " no command within " + c.idle.String()))
	case errors.Is(err, io.EOF):
		c.log.Debug("peer closed connection", "remote_addr", c.remote)
	case errors.Is(err, net.ErrClosed):
		c.log.Debug("connection closed by shutdown", "remote_addr", c.remote)
	default:
		c.log.Info("closing connection after read error", "remote_addr", c.remote, "err", err)
	}
}

// exec runs one command line and returns the response to send.
func (c *v1Conn) exec(line []byte) ([]byte, *cmdError) {
	c.params = wire.SplitParams(bytes.TrimSpace(line), c.params)
	switch string(c.params[0]) {
	case "PING":
		return c.ping()
	case "IDENTIFY":
		return c.identify()
	case "REGISTER":
		return c.register()
	case "UNREGISTER":
		return c.unregister()
	}
	return nil, fail(wire.ErrInvalid, "invalid command "+string(c.params[0]), nil)
}

// ping refreshes the peer's last update. A PING before IDENTIFY is allowed
// and changes nothing.
func (c *v1Conn) ping() ([]byte, *cmdError) {
	if c.peer != nil {
		c.reg.touch(c.peer)
	}
	return wire.OK, nil
}

// identify reads the peer's description. Every field nsqd sends except
// hostname and the topology is required.
func (c *v1Conn) identify() ([]byte, *cmdError) {
	if c.peer != nil {
		return nil, fail(wire.ErrInvalid, "cannot IDENTIFY again", nil)
	}
	size, err := wire.ReadSize(c.r)
	if err != nil {
		return nil, fail(wire.ErrBadBody, "IDENTIFY failed to read body size", err)
	}
	if size < 0 || size > maxIdentifySize {
		return nil, fail(wire.ErrBadBody, "IDENTIFY invalid body size "+strconv.Itoa(int(size)), nil)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, fail(wire.ErrBadBody, "IDENTIFY failed to read body", err)
	}
	var info peerInfo
	if err := json.Unmarshal(body, &info); err != nil {
		return nil, fail(wire.ErrBadBody, "IDENTIFY failed to decode JSON body", err)
	}
	info.RemoteAddress = c.remote
	if info.BroadcastAddress == "" || info.TCPPort == 0 || info.HTTPPort == 0 || info.Version == "" {
		return nil, fail(wire.ErrBadBody, "IDENTIFY missing fields", nil)
	}
	p := &peer{id: c.remote, info: info}
	c.reg.touch(p)
	c.reg.addClient(p)
	c.peer = p
	c.log.Info("peer identified", "remote_addr", c.remote, "broadcast_address", info.BroadcastAddress,
		"tcp_port", info.TCPPort, "http_port", info.HTTPPort, "version", info.Version)
	return c.reply, nil
}

// register adds the peer as a producer of a topic, or of a channel and its
// topic.
func (c *v1Conn) register() ([]byte, *cmdError) {
	if c.peer == nil {
		return nil, fail(wire.ErrInvalid, "client must IDENTIFY", nil)
	}
	topic, channel, cerr := c.topicChannel("REGISTER")
	if cerr != nil {
		return nil, cerr
	}
	channelAdded, topicAdded := c.reg.register(c.peer, topic, channel)
	if channelAdded {
		c.log.Info("registered", "remote_addr", c.remote, "topic", topic, "channel", channel)
	}
	if topicAdded {
		c.log.Info("registered", "remote_addr", c.remote, "topic", topic)
	}
	return wire.OK, nil
}

// unregister removes the peer from a channel or, without a channel, from a
// topic and all of its channels.
func (c *v1Conn) unregister() ([]byte, *cmdError) {
	if c.peer == nil {
		return nil, fail(wire.ErrInvalid, "client must IDENTIFY", nil)
	}
	topic, channel, cerr := c.topicChannel("UNREGISTER")
	if cerr != nil {
		return nil, cerr
	}
	if channel != "" {
		if c.reg.unregisterChannel(c.peer, topic, channel) {
			c.log.Info("unregistered", "remote_addr", c.remote, "topic", topic, "channel", channel)
		}
		return wire.OK, nil
	}
	channels, removed := c.reg.unregisterTopic(c.peer, topic)
	for _, ch := range channels {
		// A deleted topic takes its channels with it: nsqd (NSQ's and
		// ours) sends only UNREGISTER <topic>.
		c.log.Info("unregistered channel with its topic", "remote_addr", c.remote, "topic", topic, "channel", ch)
	}
	if removed {
		c.log.Info("unregistered", "remote_addr", c.remote, "topic", topic)
	}
	return wire.OK, nil
}

// topicChannel validates "<topic> [<channel>]"; further params are ignored.
func (c *v1Conn) topicChannel(cmd string) (topic, channel string, cerr *cmdError) {
	args := c.params[1:]
	if len(args) == 0 {
		return "", "", fail(wire.ErrInvalid, cmd+" insufficient number of params", nil)
	}
	topic = string(args[0])
	if !wire.ValidName(topic) {
		return "", "", fail(wire.ErrBadTopic, cmd+" topic name '"+topic+"' is not valid", nil)
	}
	if len(args) >= 2 {
		channel = string(args[1])
	}
	if channel != "" && !wire.ValidName(channel) {
		return "", "", fail(wire.ErrBadChannel, cmd+" channel name '"+channel+"' is not valid", nil)
	}
	return topic, channel, nil
}

// send writes one V1 response: int32 size, then data, with no frame type.
func (c *v1Conn) send(data []byte) error {
	c.out = binary.BigEndian.AppendUint32(c.out[:0], uint32(len(data)))
	c.out = append(c.out, data...)
	c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
	_, err := c.conn.Write(c.out)
	return err
}

// fatal sends a last error and half-closes the connection, then drains what
// the peer still sends for a bounded time, so the error is not lost to a
// reset. The caller closes the connection.
func (c *v1Conn) fatal(msg []byte) {
	send := c.send(msg)
	c.unregisterAll() // now, not after the drain
	if send != nil {
		return
	}
	cw, ok := c.conn.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.conn.SetReadDeadline(time.Now().Add(lingerTimeout))
	io.CopyN(io.Discard, c.r, lingerBytes)
}

// unregisterAll removes every registration of an identified peer, once.
func (c *v1Conn) unregisterAll() {
	if c.peer == nil {
		return
	}
	for _, name := range c.reg.removePeer(c.peer) {
		c.log.Info("unregistered on disconnect", "remote_addr", c.remote, "registration", name)
	}
	c.peer = nil
}
