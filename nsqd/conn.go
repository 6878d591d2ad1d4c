package nsqd

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/wire"
)

// Client states, as NSQ reports them in /stats.
const (
	stateInit       = 0
	stateSubscribed = 3
	stateClosing    = 4
)

const (
	readBufferSize       = 2 << 10
	defaultOutputBuffer  = 16 << 10
	maxDeliveryBatch     = 256
	keepBodyBufferAtMost = 1 << 20
)

// conn is one client connection speaking protocol V2. Its read loop (serve)
// runs commands in order; its pump goroutine, owned and stopped by serve,
// writes heartbeats and messages. Writes to the socket from both are
// serialised by wmu.
type conn struct {
	srv       *Server
	id        uint64
	nc        net.Conn
	r         *bufio.Reader
	remote    string
	connectTS int64
	log       *slog.Logger

	wmu sync.Mutex
	w   *bufio.Writer
	hdr []byte

	layers   // TLS and compression (transport.go); w writes to out
	connAuth // AUTH state (auth.go)

	imu       sync.Mutex // guards identity and pubCounts (read by /stats)
	clientID  string
	hostname  string
	userAgent string
	pubCounts map[string]uint64

	// Negotiated settings, written by serve, read by the pump.
	heartbeat    atomic.Int64 // ns; 0: disabled
	outTimeout   atomic.Int64 // ns; 0: flush every batch
	outSize      atomic.Int64
	msgTimeoutNs atomic.Int64
	sampleRate   atomic.Int32
	deflateLevel int

	waiting   bool         // in its channel's waiters; guarded by Channel.mu
	ifl       inflightList // its in-flight messages; guarded by Channel.mu
	state     atomic.Int32
	ch        atomic.Pointer[Channel]
	rdy       atomic.Int64
	inflightN atomic.Int64
	msgCount  atomic.Uint64
	finCount  atomic.Uint64
	reqCount  atomic.Uint64

	// The pump runs only while there is something to deliver (see
	// wake), so an idle connection costs one goroutine, not two. pumpMu
	// guards the fields below; lock order: Channel.mu → pumpMu.
	pumpMu    sync.Mutex
	running   bool // a pump goroutine is delivering
	pending   bool // woken while running: look again before stopping
	closed    bool // serve is exiting: start nothing more
	armed     bool // the flush timer is set
	pumpWG    sync.WaitGroup
	hbTimer   *time.Timer
	flushTmr  *time.Timer
	batch     []delivery // the pump's scratch (one pump at a time)
	closeOnce sync.Once

	// read-loop scratch
	params [][]byte
	body   []byte
	ids    []uint64
	errs   []error
}

func newConn(s *Server, id uint64, nc net.Conn) *conn {
	remote := nc.RemoteAddr().String()
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	c := &conn{
		srv:       s,
		id:        id,
		nc:        nc,
		r:         bufio.NewReaderSize(nc, readBufferSize),
		remote:    remote,
		connectTS: time.Now().Unix(),
		log:       s.log.With("client", remote),
		clientID:  host,
		hostname:  host,
	}
	c.rw, c.out = nc, nc
	c.ifl.reset()
	c.heartbeat.Store(int64(s.cfg.ClientTimeout / 2))
	c.outTimeout.Store(int64(s.cfg.OutputBufferTimeout))
	c.outSize.Store(defaultOutputBuffer)
	c.msgTimeoutNs.Store(int64(s.cfg.MsgTimeout))
	return c
}

// writerPool holds output buffers of the default size: an idle connection
// keeps none, so ten thousand idle consumers do not pin 160 MiB.
var writerPool = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, defaultOutputBuffer) }}

// writer returns the connection's output buffer, taking one from the pool
// if it has none. Caller holds wmu.
func (c *conn) writer() *bufio.Writer {
	if c.w == nil {
		if size := int(c.outSize.Load()); size == defaultOutputBuffer {
			c.w = writerPool.Get().(*bufio.Writer)
			c.w.Reset(c.out)
		} else {
			c.w = bufio.NewWriterSize(c.out, size)
		}
	}
	return c.w
}

// releaseWriter gives an empty default-size buffer back to the pool.
// Caller holds wmu.
func (c *conn) releaseWriter() {
	if c.w != nil && c.w.Buffered() == 0 && c.w.Size() == defaultOutputBuffer {
		c.w.Reset(nil)
		writerPool.Put(c.w)
		c.w = nil
	}
}

func (c *conn) wake() {
	c.pumpMu.Lock()
	defer c.pumpMu.Unlock()
	if c.closed {
		return
	}
	if c.running {
		c.pending = true
		return
	}
	c.running = true
	c.pumpWG.Go(c.runPump)
}

func (c *conn) msgTimeout() time.Duration { return time.Duration(c.msgTimeoutNs.Load()) }

// sampled reports whether sample_rate drops the next message (NSQ lets
// through about rate+1 percent).
func (c *conn) sampled() bool {
	r := c.sampleRate.Load()
	return r > 0 && rand.Int32N(100) > r
}

func (c *conn) timedOut() {
	c.inflightN.Add(-1)
	c.wake()
}

func (c *conn) emptied() {
	c.inflightN.Store(0)
	c.wake()
}

func (c *conn) closeConn() {
	c.closeOnce.Do(func() { c.nc.Close() })
}

// Bounds of the drain after a fatal error.
const (
	lingerTime  = time.Second
	lingerBytes = 4 << 20
)

// linger ends the conversation after a fatal error frame so that the client
// gets to read it. Closing a socket whose receive buffer still holds input
// makes the kernel answer with a reset, and a reset can destroy the error
// frame before the client has read it (a client that was still sending a
// long line or body would see "connection reset" instead of the reason). So
// the write side is shut first, and what the client still sends is read and
// dropped, for at most lingerTime and lingerBytes, before the close; a
// server shutdown closes the socket and ends the drain at once.
func (c *conn) linger() {
	c.pumpMu.Lock()
	c.closed = true // no new delivery starts; the defer of serve finishes the rest
	c.pumpMu.Unlock()
	cw, ok := c.nc.(interface{ CloseWrite() error })
	if !ok || cw.CloseWrite() != nil {
		return
	}
	c.nc.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, c.nc, lingerBytes)
}

// sendFatal sends a fatal error and lingers so that the client reads it.
func (c *conn) sendFatal(e *wire.Error) {
	if c.sendError(e) == nil {
		c.linger()
	}
}

// serve runs the connection after the magic has been read, until the client
// goes away, a fatal error, or the server closes it.
func (c *conn) serve() {
	c.resetHeartbeat()
	defer func() {
		c.closeConn()
		c.pumpMu.Lock()
		c.closed = true
		if c.hbTimer != nil {
			c.hbTimer.Stop()
		}
		if c.flushTmr != nil {
			c.flushTmr.Stop()
		}
		c.pumpMu.Unlock()
		c.pumpWG.Wait()
		if ch := c.ch.Load(); ch != nil {
			ch.removeConsumer(c)
		}
	}()
	for {
		if c.r.Buffered() == 0 {
			hb := time.Duration(c.heartbeat.Load())
			if hb <= 0 {
				hb = c.srv.cfg.ClientTimeout / 2
			}
			c.nc.SetReadDeadline(time.Now().Add(2 * hb))
		}
		line, err := wire.ReadLine(c.r)
		if err != nil {
			if errors.Is(err, wire.ErrLineTooLong) {
				c.sendFatal(wire.Fatal(wire.ErrInvalid, "command line too long"))
			} else if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				c.log.Debug("read failed", "err", err)
			}
			return
		}
		c.params = wire.SplitParams(line, c.params)
		resp, perr := c.exec(c.params)
		if perr != nil {
			c.log.Debug("client error", "err", perr.Error())
			if perr.Fatal {
				c.sendFatal(perr)
				return
			}
			if c.sendError(perr) != nil {
				return
			}
			continue
		}
		if resp != nil {
			if err := c.send(wire.FrameResponse, resp); err != nil {
				return
			}
		}
	}
}

func (c *conn) writeDeadline() time.Time {
	hb := time.Duration(c.heartbeat.Load())
	if hb < 10*time.Second {
		hb = 10 * time.Second
	}
	return time.Now().Add(hb)
}

// send writes one non-message frame and flushes everything buffered.
func (c *conn) send(typ int32, data []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	return c.sendLocked(typ, data)
}

// sendLocked is send with wmu held.
func (c *conn) sendLocked(typ int32, data []byte) error {
	c.nc.SetWriteDeadline(c.writeDeadline())
	c.hdr = wire.AppendFrame(c.hdr[:0], typ, data)
	w := c.writer()
	if _, err := w.Write(c.hdr); err != nil {
		return err
	}
	err := c.flushOut()
	c.releaseWriter()
	return err
}

func (c *conn) sendError(e *wire.Error) error {
	return c.send(wire.FrameError, []byte(e.Error()))
}

func (c *conn) exec(p [][]byte) ([]byte, *wire.Error) {
	if c.srv.cfg.TLSRequired != TLSNotRequired && !c.isTLS.Load() && !bytes.Equal(p[0], []byte("IDENTIFY")) {
		return nil, wire.Fatal(wire.ErrInvalid, fmt.Sprintf("cannot %s in current state (TLS required)", p[0]))
	}
	switch string(p[0]) {
	case "FIN":
		return nil, c.fin(p)
	case "RDY":
		return nil, c.rdyCmd(p)
	case "REQ":
		return nil, c.req(p)
	case "PUB":
		return c.pub(p)
	case "MPUB":
		return c.mpub(p)
	case "DPUB":
		return c.dpub(p)
	case "NOP":
		return nil, nil
	case "TOUCH":
		return nil, c.touch(p)
	case "SUB":
		return c.sub(p)
	case "CLS":
		return c.cls()
	case "IDENTIFY":
		return c.identify(p)
	case "AUTH":
		return c.auth(p)
	}
	return nil, wire.Fatal(wire.ErrInvalid, fmt.Sprintf("invalid command %s", p[0]))
}

// readBody reads a length-prefixed body after checking the length. The
// returned slice is reused by the next command.
//
// A body larger than the buffer already held grows as its bytes arrive (to
// at most twice what was received), so a client that announces a large
// body and sends little of it pins little memory: thousands of half-sent
// 5 MiB MPUBs cost what they sent, not 5 MiB each.
func (c *conn) readBody(n int32) ([]byte, error) {
	size := int(n)
	if cap(c.body) >= size {
		b := c.body[:size]
		if _, err := io.ReadFull(c.r, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	b := c.body[:0]
	for len(b) < size {
		want := min(size, max(2*cap(b), bodyGrowthStart))
		if cap(b) < want {
			nb := make([]byte, len(b), want)
			copy(nb, b)
			b = nb
		}
		m, err := io.ReadFull(c.r, b[len(b):want])
		b = b[:len(b)+m]
		if err != nil {
			c.body = b[:0]
			return nil, err
		}
	}
	c.body = b
	return b, nil
}

// bodyGrowthStart is the first allocation for a body larger than the
// connection's buffer.
const bodyGrowthStart = 16 << 10

// doneWithBody drops a large body buffer so an idle connection does not
// keep megabytes.
func (c *conn) doneWithBody() {
	if cap(c.body) > keepBodyBufferAtMost {
		c.body = nil
	}
}

// identifyBody is the IDENTIFY request. Unknown fields are ignored.
type identifyBody struct {
	ClientID            string `json:"client_id"`
	Hostname            string `json:"hostname"`
	ShortID             string `json:"short_id"`
	LongID              string `json:"long_id"`
	HeartbeatInterval   int64  `json:"heartbeat_interval"`
	OutputBufferSize    int64  `json:"output_buffer_size"`
	OutputBufferTimeout int64  `json:"output_buffer_timeout"`
	FeatureNegotiation  bool   `json:"feature_negotiation"`
	TLSv1               bool   `json:"tls_v1"`
	Deflate             bool   `json:"deflate"`
	DeflateLevel        int    `json:"deflate_level"`
	Snappy              bool   `json:"snappy"`
	SampleRate          int32  `json:"sample_rate"`
	UserAgent           string `json:"user_agent"`
	MsgTimeout          int64  `json:"msg_timeout"`
	TopologyRegion      string `json:"topology_region"`
	TopologyZone        string `json:"topology_zone"`
}

// identifyReply is the feature-negotiation response.
type identifyReply struct {
	MaxRdyCount         int64  `json:"max_rdy_count"`
	Version             string `json:"version"`
	MaxMsgTimeout       int64  `json:"max_msg_timeout"`
	MsgTimeout          int64  `json:"msg_timeout"`
	TLSv1               bool   `json:"tls_v1"`
	Deflate             bool   `json:"deflate"`
	DeflateLevel        int    `json:"deflate_level"`
	MaxDeflateLevel     int    `json:"max_deflate_level"`
	Snappy              bool   `json:"snappy"`
	SampleRate          int32  `json:"sample_rate"`
	AuthRequired        bool   `json:"auth_required"`
	OutputBufferSize    int64  `json:"output_buffer_size"`
	OutputBufferTimeout int64  `json:"output_buffer_timeout"`
	TopologyRegion      string `json:"topology_region"`
	TopologyZone        string `json:"topology_zone"`
}

func (c *conn) identify(p [][]byte) ([]byte, *wire.Error) {
	cfg := c.srv.cfg
	if c.state.Load() != stateInit {
		return nil, wire.Fatal(wire.ErrInvalid, "cannot IDENTIFY in current state")
	}
	n, err := wire.ReadSize(c.r)
	if err != nil {
		return nil, wire.Fatal(wire.ErrBadBody, "IDENTIFY failed to read body size")
	}
	if int64(n) > cfg.MaxBodySize {
		return nil, wire.Fatal(wire.ErrBadBody, fmt.Sprintf("IDENTIFY body too big %d > %d", n, cfg.MaxBodySize))
	}
	if n <= 0 {
		return nil, wire.Fatal(wire.ErrBadBody, fmt.Sprintf("IDENTIFY invalid body size %d", n))
	}
	body, err := c.readBody(n)
	if err != nil {
		return nil, wire.Fatal(wire.ErrBadBody, "IDENTIFY failed to read body")
	}
	defer c.doneWithBody()
	var req identifyBody
	if err := json.Unmarshal(body, &req); err != nil {
		return nil, wire.Fatal(wire.ErrBadBody, "IDENTIFY failed to decode JSON body")
	}

	// Validate everything before changing anything.
	hb := time.Duration(c.heartbeat.Load())
	switch ms := req.HeartbeatInterval; {
	case ms == -1:
		hb = 0
	case ms == 0:
	case ms >= 1000 && ms <= cfg.MaxHeartbeatInterval.Milliseconds():
		hb = time.Duration(ms) * time.Millisecond
	default:
		return nil, identifyErr(fmt.Sprintf("heartbeat interval (%d) is invalid", ms))
	}
	outTimeout := time.Duration(c.outTimeout.Load())
	switch ms := req.OutputBufferTimeout; {
	case ms == -1:
		outTimeout = 0
	case ms == 0:
	case ms >= cfg.MinOutputBufferTimeout.Milliseconds() && ms <= cfg.MaxOutputBufferTimeout.Milliseconds():
		outTimeout = time.Duration(ms) * time.Millisecond
	default:
		return nil, identifyErr(fmt.Sprintf("output buffer timeout (%d) is invalid", ms))
	}
	outSize := c.outSize.Load()
	switch sz := req.OutputBufferSize; {
	case sz == -1:
		outSize, outTimeout = 1, 0
	case sz == 0:
	case sz >= 64 && sz <= cfg.MaxOutputBufferSize:
		outSize = sz
	default:
		return nil, identifyErr(fmt.Sprintf("output buffer size (%d) is invalid", sz))
	}
	if req.SampleRate < 0 || req.SampleRate > 99 {
		return nil, identifyErr(fmt.Sprintf("sample rate (%d) is invalid", req.SampleRate))
	}
	msgTimeout := time.Duration(c.msgTimeoutNs.Load())
	switch ms := req.MsgTimeout; {
	case ms == 0:
	case ms >= 1000 && ms <= cfg.MaxMsgTimeout.Milliseconds():
		msgTimeout = time.Duration(ms) * time.Millisecond
	default:
		return nil, identifyErr(fmt.Sprintf("msg timeout (%d) is invalid", ms))
	}

	c.imu.Lock()
	if req.ClientID == "" {
		req.ClientID = req.ShortID // clients older than IDENTIFY's client_id
	}
	if req.Hostname == "" {
		req.Hostname = req.LongID
	}
	if req.ClientID != "" {
		c.clientID = req.ClientID
	}
	if req.Hostname != "" {
		c.hostname = req.Hostname
	}
	c.userAgent = req.UserAgent
	c.imu.Unlock()
	c.heartbeat.Store(int64(hb))
	c.outTimeout.Store(int64(outTimeout))
	c.msgTimeoutNs.Store(int64(msgTimeout))
	c.sampleRate.Store(req.SampleRate)
	if outSize != c.outSize.Load() {
		c.wmu.Lock()
		if c.w != nil {
			c.flushOut()
			c.releaseWriter()
			c.w = nil
		}
		c.outSize.Store(outSize)
		c.wmu.Unlock()
	}
	c.resetHeartbeat()
	c.log.Debug("identified", "client_id", req.ClientID, "user_agent", req.UserAgent)

	if !req.FeatureNegotiation {
		return wire.OK, nil
	}
	if req.Snappy && cfg.SnappyEnabled && req.Deflate && cfg.DeflateEnabled {
		return nil, wire.Fatal(wire.ErrIdentifyFailed, "cannot enable both deflate and snappy compression")
	}
	useTLS := req.TLSv1 && c.srv.tlsConfig != nil
	useSnappy := req.Snappy && cfg.SnappyEnabled
	useDeflate := req.Deflate && cfg.DeflateEnabled
	level := 6
	if useDeflate && req.DeflateLevel > 0 { // NSQ: only a negotiated deflate
		level = req.DeflateLevel
	}
	level = min(level, cfg.MaxDeflateLevel)
	reply, _ := json.Marshal(identifyReply{
		MaxRdyCount:         cfg.MaxRdyCount,
		Version:             version.Compat,
		MaxMsgTimeout:       cfg.MaxMsgTimeout.Milliseconds(),
		MsgTimeout:          msgTimeout.Milliseconds(),
		TLSv1:               useTLS,
		Deflate:             useDeflate,
		DeflateLevel:        level,
		MaxDeflateLevel:     cfg.MaxDeflateLevel,
		Snappy:              useSnappy,
		SampleRate:          req.SampleRate,
		AuthRequired:        c.srv.auth != nil,
		OutputBufferSize:    outSize,
		OutputBufferTimeout: outTimeout.Milliseconds(),
		TopologyRegion:      cfg.TopologyRegion,
		TopologyZone:        cfg.TopologyZone,
	})
	if useTLS || useSnappy || useDeflate {
		return nil, c.upgrade(reply, useTLS, useSnappy, useDeflate, level)
	}
	return reply, nil
}

func identifyErr(desc string) *wire.Error {
	return wire.Fatal(wire.ErrBadBody, "IDENTIFY "+desc)
}

func (c *conn) auth(p [][]byte) ([]byte, *wire.Error) {
	if c.state.Load() != stateInit {
		return nil, wire.Fatal(wire.ErrInvalid, "cannot AUTH in current state")
	}
	if len(p) != 1 {
		return nil, wire.Fatal(wire.ErrInvalid, "AUTH invalid number of parameters")
	}
	n, err := wire.ReadSize(c.r)
	if err != nil {
		return nil, wire.Fatal(wire.ErrBadBody, "AUTH failed to read body size")
	}
	if int64(n) > c.srv.cfg.MaxBodySize {
		return nil, wire.Fatal(wire.ErrBadBody, fmt.Sprintf("AUTH body too big %d > %d", n, c.srv.cfg.MaxBodySize))
	}
	if n <= 0 {
		return nil, wire.Fatal(wire.ErrBadBody, fmt.Sprintf("AUTH invalid body size %d", n))
	}
	body, err := c.readBody(n)
	if err != nil {
		return nil, wire.Fatal(wire.ErrBadBody, "AUTH failed to read body")
	}
	secret := string(body)
	c.doneWithBody()
	return c.authenticate(secret)
}

func (c *conn) sub(p [][]byte) ([]byte, *wire.Error) {
	if c.state.Load() != stateInit {
		return nil, wire.Fatal(wire.ErrInvalid, "cannot SUB in current state")
	}
	if c.heartbeat.Load() <= 0 {
		return nil, wire.Fatal(wire.ErrInvalid, "cannot SUB with heartbeats disabled")
	}
	if len(p) < 3 {
		return nil, wire.Fatal(wire.ErrInvalid, "SUB insufficient number of parameters")
	}
	topicName, chanName := string(p[1]), string(p[2])
	if !wire.ValidName(topicName) {
		return nil, wire.Fatal(wire.ErrBadTopic, fmt.Sprintf("SUB topic name %q is not valid", topicName))
	}
	if !wire.ValidName(chanName) {
		return nil, wire.Fatal(wire.ErrBadChannel, fmt.Sprintf("SUB channel name %q is not valid", chanName))
	}
	if e := c.checkAuth("SUB", topicName, chanName); e != nil {
		return nil, e
	}
	var ch *Channel
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		if attempt > 0 {
			time.Sleep(100 * time.Millisecond) // the topic or channel was being deleted
		}
		var t *Topic
		if t, err = c.srv.Topic(topicName); err != nil {
			continue
		}
		if ch, err = t.Channel(chanName); err != nil {
			continue
		}
		if err = ch.addConsumer(c, c.srv.cfg.MaxChannelConsumers); err == nil || errors.Is(err, errTooMany) {
			break
		}
	}
	if errors.Is(err, errTooMany) {
		return nil, wire.Fatal(wire.ErrSubFailed, fmt.Sprintf("SUB failed consumers for %s:%s exceeds limit of %d", topicName, chanName, c.srv.cfg.MaxChannelConsumers))
	}
	if err != nil {
		return nil, wire.Fatal(wire.ErrSubFailed, "SUB failed to deleted topic/channel")
	}
	c.state.Store(stateSubscribed)
	c.ch.Store(ch)
	c.wake()
	return wire.OK, nil
}

func (c *conn) rdyCmd(p [][]byte) *wire.Error {
	st := c.state.Load()
	if st == stateClosing {
		return nil // RDY after CLS is ignored
	}
	if st != stateSubscribed {
		return wire.Fatal(wire.ErrInvalid, "cannot RDY in current state")
	}
	count := int64(1)
	if len(p) > 1 {
		n, err := parseCount(p[1])
		if err != nil {
			return wire.Fatal(wire.ErrInvalid, fmt.Sprintf("RDY could not parse count %s", p[1]))
		}
		count = n
	}
	if max := c.srv.cfg.MaxRdyCount; count < 0 || count > max {
		return wire.Fatal(wire.ErrInvalid, fmt.Sprintf("RDY count %d out of range 0-%d", count, max))
	}
	c.rdy.Store(count)
	c.wake()
	return nil
}

// parseCount parses a decimal count the way NSQ does: digits only (no
// sign), an empty value is 0, and overflow is an error.
func parseCount(b []byte) (int64, error) {
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, strconv.ErrSyntax
		}
		if n > (1<<63-1-9)/10 {
			return 0, strconv.ErrRange
		}
		n = n*10 + int64(c-'0')
	}
	return n, nil
}

// parseID checks a message ID parameter. A 16-byte ID that is not one of
// ours cannot be in flight; it maps to an ID that never is.
func parseID(b []byte) (uint64, *wire.Error) {
	if len(b) != wire.IDLength {
		return 0, wire.Fatal(wire.ErrInvalid, "invalid message ID")
	}
	id, ok := wire.DecodeID(b)
	if !ok {
		return 0, nil
	}
	return id, nil
}

func (c *conn) subscribedOrClosing(cmd string) *wire.Error {
	if st := c.state.Load(); st != stateSubscribed && st != stateClosing {
		return wire.Fatal(wire.ErrInvalid, "cannot "+cmd+" in current state")
	}
	return nil
}

// fin finishes one message, plus every complete FIN line already buffered
// behind it, under one channel lock.
func (c *conn) fin(p [][]byte) *wire.Error {
	if e := c.subscribedOrClosing("FIN"); e != nil {
		return e
	}
	if len(p) < 2 {
		return wire.Fatal(wire.ErrInvalid, "FIN insufficient number of params")
	}
	id, e := parseID(p[1])
	if e != nil {
		return e
	}
	first := p[1] // aliases the read buffer, which Peek and Discard leave alone
	c.ids = append(c.ids[:0], id)
	const finLine = len("FIN ") + wire.IDLength + 1
	for c.r.Buffered() >= finLine && len(c.ids) < 1024 {
		b, _ := c.r.Peek(finLine)
		if !bytes.HasPrefix(b, []byte("FIN ")) || b[finLine-1] != '\n' {
			break
		}
		next, ok := wire.DecodeID(b[4 : 4+wire.IDLength])
		if !ok || wire.EncodeID(next) != wire.ID(b[4:4+wire.IDLength]) { // errors echo the ID as sent
			break
		}
		c.ids = append(c.ids, next)
		c.r.Discard(finLine)
	}
	c.errs = c.errs[:0]
	for range c.ids {
		c.errs = append(c.errs, nil)
	}
	ch := c.ch.Load()
	done := ch.finish(c, c.ids, c.errs)
	c.finCount.Add(uint64(done))
	c.wake()
	for i, err := range c.errs {
		if err != nil {
			shown := first
			if i > 0 {
				id := wire.EncodeID(c.ids[i])
				shown = id[:]
			}
			if werr := c.sendError(wire.NonFatal(wire.ErrFinFailed, fmt.Sprintf("FIN %s failed %s", shown, err))); werr != nil {
				return wire.Fatal(wire.ErrInvalid, "write failed")
			}
		}
	}
	return nil
}

func (c *conn) req(p [][]byte) *wire.Error {
	if e := c.subscribedOrClosing("REQ"); e != nil {
		return e
	}
	if len(p) < 3 {
		return wire.Fatal(wire.ErrInvalid, "REQ insufficient number of params")
	}
	id, e := parseID(p[1])
	if e != nil {
		return e
	}
	ms, err := parseCount(p[2])
	if err != nil {
		return wire.Fatal(wire.ErrInvalid, fmt.Sprintf("REQ could not parse timeout %s", p[2]))
	}
	delay := time.Duration(ms) * time.Millisecond
	if max := c.srv.cfg.MaxReqTimeout; delay > max || ms > int64(max/time.Millisecond) {
		c.log.Info("REQ timeout clamped", "timeout_ms", ms, "max_ms", max.Milliseconds())
		delay = max
	} else if delay < 0 {
		c.log.Info("REQ timeout clamped", "timeout_ms", ms, "max_ms", max.Milliseconds())
		delay = 0
	}
	if err := c.ch.Load().requeue(c, id, delay); err != nil {
		return wire.NonFatal(wire.ErrReqFailed, fmt.Sprintf("REQ %s failed %s", p[1], err))
	}
	c.reqCount.Add(1)
	c.wake()
	return nil
}

func (c *conn) touch(p [][]byte) *wire.Error {
	if e := c.subscribedOrClosing("TOUCH"); e != nil {
		return e
	}
	if len(p) < 2 {
		return wire.Fatal(wire.ErrInvalid, "TOUCH insufficient number of params")
	}
	id, e := parseID(p[1])
	if e != nil {
		return e
	}
	if err := c.ch.Load().touch(c, id, c.msgTimeout(), c.srv.cfg.MaxMsgTimeout); err != nil {
		return wire.NonFatal(wire.ErrTouchFailed, fmt.Sprintf("TOUCH %s failed %s", p[1], err))
	}
	return nil
}

func (c *conn) cls() ([]byte, *wire.Error) {
	if c.state.Load() != stateSubscribed {
		return nil, wire.Fatal(wire.ErrInvalid, "cannot CLS in current state")
	}
	// Under wmu: a pump that took messages before this point either wrote
	// them already or sees the state below and gives them back, so no
	// message follows CLOSE_WAIT.
	c.wmu.Lock()
	c.rdy.Store(0)
	c.state.Store(stateClosing)
	c.wmu.Unlock()
	return wire.CloseWait, nil
}

// readMessageBody reads a PUB/DPUB body with NSQ's checks and texts.
func (c *conn) readMessageBody(cmd string) ([]byte, *wire.Error) {
	n, err := wire.ReadSize(c.r)
	if err != nil {
		return nil, wire.Fatal(wire.ErrBadMessage, cmd+" failed to read message body size")
	}
	if n <= 0 {
		return nil, wire.Fatal(wire.ErrBadMessage, fmt.Sprintf("%s invalid message body size %d", cmd, n))
	}
	if max := c.srv.cfg.MaxMsgSize; int64(n) > max {
		return nil, wire.Fatal(wire.ErrBadMessage, fmt.Sprintf("%s message too big %d > %d", cmd, n, max))
	}
	body, err := c.readBody(n)
	if err != nil {
		return nil, wire.Fatal(wire.ErrBadMessage, cmd+" failed to read message body")
	}
	return body, nil
}

func (c *conn) pub(p [][]byte) ([]byte, *wire.Error) {
	if len(p) < 2 {
		return nil, wire.Fatal(wire.ErrInvalid, "PUB insufficient number of parameters")
	}
	if !wire.ValidName(string(p[1])) {
		return nil, wire.Fatal(wire.ErrBadTopic, fmt.Sprintf("PUB topic name %q is not valid", p[1]))
	}
	name := c.srv.topicName(p[1])
	body, e := c.readMessageBody("PUB")
	if e != nil {
		return nil, e
	}
	defer c.doneWithBody()
	if e := c.checkAuth("PUB", name, ""); e != nil {
		return nil, e
	}
	t, err := c.srv.Topic(name)
	if err == nil {
		err = t.Publish(body, 0)
	}
	if err != nil {
		return nil, wire.Fatal(wire.ErrPubFailed, "PUB failed "+err.Error())
	}
	c.countPub(t.name, 1)
	return wire.OK, nil
}

func (c *conn) dpub(p [][]byte) ([]byte, *wire.Error) {
	if len(p) < 3 {
		return nil, wire.Fatal(wire.ErrInvalid, "DPUB insufficient number of parameters")
	}
	if !wire.ValidName(string(p[1])) {
		return nil, wire.Fatal(wire.ErrBadTopic, fmt.Sprintf("DPUB topic name %q is not valid", p[1]))
	}
	ms, err := parseCount(p[2])
	if err != nil {
		return nil, wire.Fatal(wire.ErrInvalid, fmt.Sprintf("DPUB could not parse timeout %s", p[2]))
	}
	max := c.srv.cfg.MaxReqTimeout.Milliseconds()
	if ms < 0 || ms > max {
		return nil, wire.Fatal(wire.ErrInvalid, fmt.Sprintf("DPUB timeout %d out of range 0-%d", ms, max))
	}
	name := c.srv.topicName(p[1])
	body, e := c.readMessageBody("DPUB")
	if e != nil {
		return nil, e
	}
	defer c.doneWithBody()
	if e := c.checkAuth("DPUB", name, ""); e != nil {
		return nil, e
	}
	t, err := c.srv.Topic(name)
	if err == nil {
		err = t.Publish(body, time.Duration(ms)*time.Millisecond)
	}
	if err != nil {
		return nil, wire.Fatal(wire.ErrDPubFailed, "DPUB failed "+err.Error())
	}
	c.countPub(t.name, 1)
	return wire.OK, nil
}

func (c *conn) mpub(p [][]byte) ([]byte, *wire.Error) {
	cfg := c.srv.cfg
	if len(p) < 2 {
		return nil, wire.Fatal(wire.ErrInvalid, "MPUB insufficient number of parameters")
	}
	if !wire.ValidName(string(p[1])) {
		return nil, wire.Fatal(wire.ErrBadTopic, fmt.Sprintf("E_BAD_TOPIC MPUB topic name %q is not valid", p[1]))
	}
	name := c.srv.topicName(p[1])
	if e := c.checkAuth("MPUB", name, ""); e != nil {
		return nil, e
	}
	n, err := wire.ReadSize(c.r)
	if err != nil {
		return nil, wire.Fatal(wire.ErrBadBody, "MPUB failed to read body size")
	}
	if n <= 0 {
		return nil, wire.Fatal(wire.ErrBadBody, fmt.Sprintf("MPUB invalid body size %d", n))
	}
	if int64(n) > cfg.MaxBodySize {
		return nil, wire.Fatal(wire.ErrBadBody, fmt.Sprintf("MPUB body too big %d > %d", n, cfg.MaxBodySize))
	}
	body, err := c.readBody(n)
	if err != nil {
		return nil, wire.Fatal(wire.ErrBadBody, "MPUB failed to read body")
	}
	defer c.doneWithBody()
	maxCount := int((cfg.MaxBodySize - 4) / 5)
	if e := wire.SplitMPUB(body, maxCount, int(cfg.MaxMsgSize), nil); e != nil {
		return nil, e
	}
	t, err := c.srv.Topic(name)
	if err == nil {
		err = t.PublishMPUB(body)
	}
	if err != nil {
		return nil, wire.Fatal(wire.ErrMPubFailed, "MPUB failed "+err.Error())
	}
	c.countPub(t.name, uint64(binary.BigEndian.Uint32(body)))
	return wire.OK, nil
}

func (c *conn) countPub(topic string, n uint64) {
	c.imu.Lock()
	if c.pubCounts == nil {
		c.pubCounts = map[string]uint64{}
	}
	c.pubCounts[topic] += n
	c.imu.Unlock()
}

// resetHeartbeat (re)arms the heartbeat timer for the negotiated interval.
// The timer's function runs in its own short-lived goroutine, counted in
// pumpWG so serve waits for it.
func (c *conn) resetHeartbeat() {
	c.pumpMu.Lock()
	defer c.pumpMu.Unlock()
	if c.closed {
		return
	}
	hb := time.Duration(c.heartbeat.Load())
	if c.hbTimer == nil {
		if hb > 0 {
			c.hbTimer = time.AfterFunc(hb, c.heartbeatFire)
		}
		return
	}
	c.hbTimer.Stop()
	if hb > 0 {
		c.hbTimer.Reset(hb)
	}
}

// heartbeatFire sends a heartbeat (which also flushes anything buffered)
// and arms the next one.
func (c *conn) heartbeatFire() {
	if !c.enterTimer() {
		return
	}
	defer c.pumpWG.Done()
	if err := c.send(wire.FrameResponse, wire.Heartbeat); err != nil {
		c.closeConn()
		return
	}
	c.resetHeartbeat()
}

// flushFire pushes out buffered messages when the output-buffer timeout
// passes.
func (c *conn) flushFire() {
	if !c.enterTimer() {
		return
	}
	defer c.pumpWG.Done()
	c.pumpMu.Lock()
	c.armed = false
	c.pumpMu.Unlock()
	if err := c.flush(); err != nil {
		c.closeConn()
	}
}

// enterTimer registers a timer function in pumpWG unless serve is exiting.
func (c *conn) enterTimer() bool {
	c.pumpMu.Lock()
	defer c.pumpMu.Unlock()
	if c.closed {
		return false
	}
	c.pumpWG.Add(1)
	return true
}

// armFlush sets the output-buffer timer if it is not set.
func (c *conn) armFlush() {
	c.pumpMu.Lock()
	defer c.pumpMu.Unlock()
	if c.armed || c.closed {
		return
	}
	c.armed = true
	d := time.Duration(c.outTimeout.Load())
	if c.flushTmr == nil {
		c.flushTmr = time.AfterFunc(d, c.flushFire)
	} else {
		c.flushTmr.Reset(d)
	}
}

// runPump delivers while there is credit and something to deliver, then
// stops; a wake that came meanwhile makes it look once more.
func (c *conn) runPump() {
	for {
		if !c.deliver() {
			c.closeConn()
		}
		c.pumpMu.Lock()
		if c.pending && !c.closed {
			c.pending = false
			c.pumpMu.Unlock()
			continue
		}
		c.running = false
		c.pumpMu.Unlock()
		return
	}
}

// deliver takes batches from the channel and writes them while the client
// has credit. Buffered frames are flushed when the client is no longer
// ready, at once for an unbuffered client, and otherwise by the flush timer
// (NSQ's output_buffer_timeout). It returns false on a write error.
func (c *conn) deliver() bool {
	ch := c.ch.Load()
	if ch == nil {
		return true
	}
	for {
		credit := c.rdy.Load() - c.inflightN.Load()
		if credit <= 0 || c.state.Load() != stateSubscribed {
			return c.flush() == nil // not ready for more: push out what is buffered
		}
		c.batch = ch.take(c, int(min(credit, maxDeliveryBatch)), time.Now().UnixNano(), c.batch[:0])
		if len(c.batch) == 0 {
			return true
		}
		err := c.writeMessages(c.batch)
		if errors.Is(err, errClosingConn) {
			ch.giveBack(c, c.batch)
			err = nil
		}
		clear(c.batch) // drop references into the log
		if err != nil {
			return false
		}
		if c.outTimeout.Load() == 0 {
			if err := c.flush(); err != nil {
				return false
			}
			continue
		}
		c.armFlush()
	}
}

// errClosingConn: the client sent CLS after the batch was taken.
var errClosingConn = errors.New("closing")

func (c *conn) writeMessages(batch []delivery) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.state.Load() != stateSubscribed {
		return errClosingConn
	}
	c.nc.SetWriteDeadline(c.writeDeadline())
	for i := range batch {
		d := &batch[i]
		c.hdr = wire.AppendMessageHeader(c.hdr[:0], d.ts, d.attempts, wire.EncodeID(d.id), len(d.body))
		w := c.writer()
		if w.Available() < len(c.hdr)+len(d.body) && w.Buffered() == 0 {
			// A buffer too small for the frame (an unbuffered client
			// asked for size 1) would send the header and the body as
			// two writes, two packets: send the frame whole instead.
			c.hdr = append(c.hdr, d.body...)
			if _, err := w.Write(c.hdr); err != nil {
				return err
			}
			continue
		}
		if _, err := w.Write(c.hdr); err != nil {
			return err
		}
		if _, err := w.Write(d.body); err != nil {
			return err
		}
	}
	c.msgCount.Add(uint64(len(batch)))
	return nil
}

func (c *conn) flush() error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	// Deflate, and the buffer behind a compressor, may hold what w passed on.
	if c.w == nil || c.w.Buffered() == 0 && c.fw == nil && (c.cbuf == nil || c.cbuf.Buffered() == 0) {
		return nil
	}
	c.nc.SetWriteDeadline(c.writeDeadline())
	err := c.flushOut()
	c.releaseWriter()
	return err
}
