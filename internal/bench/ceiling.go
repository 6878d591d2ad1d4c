package bench

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nsqx/nsqx/wire"
)

// Limits the ceiling enforces, NSQ's defaults.
const (
	ceilingMaxMsgSize  = 1 << 20
	ceilingMaxBodySize = 5 << 20
)

// CeilingConfig configures a Ceiling.
type CeilingConfig struct {
	// MessageSize is the body size of the pre-built message frames a
	// source streams.
	MessageSize int
	// MaxRDY is the largest RDY accepted (and reported in IDENTIFY).
	MaxRDY int
	// Relay forwards each published body to a subscriber instead of
	// streaming pre-built frames.
	Relay bool
}

// CeilingStats counts what a Ceiling has done.
type CeilingStats struct {
	Published int64 // messages received by PUB and MPUB
	Sent      int64 // message frames written to subscribers
	Finished  int64 // FINs received
	Requeued  int64 // REQs received
	Conns     int64 // connections open now
}

// Ceiling is an in-process V2 server that does the least possible work per
// message (see the package doc). Start it with StartCeiling, stop it with
// Close.
type Ceiling struct {
	cfg CeilingConfig
	ln  net.Listener

	// block holds blockFrames pre-built message frames of frameLen bytes.
	block       []byte
	frameLen    int
	blockFrames int
	identify    []byte // IDENTIFY feature-negotiation reply frame

	published, sent, finished, requeued, conns atomic.Int64

	mu       sync.Mutex
	all      map[*ceilingConn]struct{}
	channels map[string]*ceilingChannel
	subs     []*ceilingConn // subscribed connections, in SUB order
	closed   bool
	// relay state, under mu
	pending [][]byte // bodies waiting for a subscriber with credit
	nextSub int
	nextID  uint64

	wg sync.WaitGroup // accept loop and connection handlers
}

// ceilingChannel is a channel of a source: how many of the published
// messages have been handed to its subscribers.
type ceilingChannel struct {
	taken atomic.Int64
}

// take reserves up to n of the messages published but not yet taken.
func (ch *ceilingChannel) take(n int64, published *atomic.Int64) int64 {
	for {
		t := ch.taken.Load()
		avail := published.Load() - t
		if avail <= 0 {
			return 0
		}
		k := min(n, avail)
		if ch.taken.CompareAndSwap(t, t+k) {
			return k
		}
	}
}

// StartCeiling listens on 127.0.0.1:0 and serves until Close.
func StartCeiling(cfg CeilingConfig) (*Ceiling, error) {
	if cfg.MessageSize <= 0 || cfg.MessageSize > ceilingMaxMsgSize {
		return nil, errors.New("ceiling: message size out of range")
	}
	if cfg.MaxRDY <= 0 {
		cfg.MaxRDY = 2500
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Ceiling{
		cfg:      cfg,
		ln:       ln,
		all:      make(map[*ceilingConn]struct{}),
		channels: make(map[string]*ceilingChannel),
	}
	body := messageBody(cfg.MessageSize)
	ts := time.Now().UnixNano()
	s.frameLen = wire.FrameHeaderLength + wire.MessageHeaderLength + cfg.MessageSize
	s.blockFrames = max(1, min(512, (256<<10)/s.frameLen))
	s.block = make([]byte, 0, s.blockFrames*s.frameLen)
	for i := range s.blockFrames {
		s.block = wire.AppendMessage(s.block, ts, 1, wire.EncodeID(uint64(i)), body)
	}
	reply, _ := json.Marshal(map[string]any{
		"max_rdy_count":         cfg.MaxRDY,
		"version":               "1.3.0",
		"max_msg_timeout":       900000,
		"msg_timeout":           60000,
		"tls_v1":                false,
		"deflate":               false,
		"deflate_level":         6,
		"max_deflate_level":     6,
		"snappy":                false,
		"sample_rate":           0,
		"auth_required":         false,
		"output_buffer_size":    16384,
		"output_buffer_timeout": 250,
	})
	s.identify = wire.AppendFrame(nil, wire.FrameResponse, reply)
	s.wg.Go(s.accept)
	return s, nil
}

// Addr is the TCP address the ceiling listens on.
func (s *Ceiling) Addr() string { return s.ln.Addr().String() }

// Stats returns the counters.
func (s *Ceiling) Stats() CeilingStats {
	return CeilingStats{
		Published: s.published.Load(),
		Sent:      s.sent.Load(),
		Finished:  s.finished.Load(),
		Requeued:  s.requeued.Load(),
		Conns:     s.conns.Load(),
	}
}

// Close stops accepting, closes every connection and waits for all the
// ceiling's goroutines to return.
func (s *Ceiling) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.all {
		c.nc.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Ceiling) accept() {
	for {
		nc, err := s.ln.Accept()
		if err != nil {
			return // closed by Close
		}
		c := &ceilingConn{
			s:    s,
			nc:   nc,
			r:    bufio.NewReaderSize(nc, readBufferSize),
			w:    bufio.NewWriterSize(nc, writeBufferSize),
			wake: make(chan struct{}, 1),
			done: make(chan struct{}),
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			nc.Close()
			return
		}
		s.all[c] = struct{}{}
		s.conns.Add(1)
		s.mu.Unlock()
		s.wg.Go(c.serve)
	}
}

func (s *Ceiling) channel(name string) *ceilingChannel {
	s.mu.Lock()
	defer s.mu.Unlock()
	ch := s.channels[name]
	if ch == nil {
		ch = new(ceilingChannel)
		s.channels[name] = ch
	}
	return ch
}

// wakeSubscribers tells every source pump that messages were published.
func (s *Ceiling) wakeSubscribers() {
	s.mu.Lock()
	for _, c := range s.subs {
		c.signal()
	}
	s.mu.Unlock()
}

// relay forwards one published body: straight to a subscriber with credit,
// or into pending until one has credit. body is copied if it must wait.
func (s *Ceiling) relay(body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) == 0 {
		if c := s.readySubscriber(); c != nil {
			return c.deliver(body)
		}
	}
	s.pending = append(s.pending, bytes.Clone(body))
	return nil
}

// readySubscriber picks the next subscriber with credit, round robin.
// s.mu is held.
func (s *Ceiling) readySubscriber() *ceilingConn {
	for range s.subs {
		c := s.subs[s.nextSub%len(s.subs)]
		s.nextSub++
		if !c.closing && c.rdy.Load() > c.inFlight.Load() {
			return c
		}
	}
	return nil
}

// drainPending delivers waiting relay bodies while subscribers have credit.
// s.mu is held.
func (s *Ceiling) drainPending() {
	for len(s.pending) > 0 {
		c := s.readySubscriber()
		if c == nil {
			return
		}
		if c.deliver(s.pending[0]) != nil {
			return
		}
		s.pending[0] = nil
		s.pending = s.pending[1:]
	}
}

// ceilingConn is one client of a Ceiling. serve reads commands; a source
// subscriber also has a pump goroutine writing messages. wmu guards w.
type ceilingConn struct {
	s  *Ceiling
	nc net.Conn
	r  *bufio.Reader

	big []byte // bodies larger than r's buffer

	wmu     sync.Mutex
	w       *bufio.Writer
	closing bool   // CLS received; under wmu (and s.mu in relay mode)
	hdr     []byte // relay: message header being written; under wmu

	ch       *ceilingChannel
	rdy      atomic.Int64
	inFlight atomic.Int64
	wake     chan struct{} // pump: credit or messages may be available
	done     chan struct{} // closed when serve returns
}

func (c *ceilingConn) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

var (
	okFrame        = wire.AppendFrame(nil, wire.FrameResponse, wire.OK)
	closeWaitFrame = wire.AppendFrame(nil, wire.FrameResponse, wire.CloseWait)
)

func (c *ceilingConn) serve() {
	s := c.s
	var pump sync.WaitGroup
	defer func() {
		close(c.done)
		c.nc.Close() // unblocks a pump stuck writing to a peer that stopped reading
		pump.Wait()
		s.mu.Lock()
		delete(s.all, c)
		for i, sc := range s.subs {
			if sc == c {
				s.subs = append(s.subs[:i], s.subs[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
		s.conns.Add(-1)
	}()

	var magic [4]byte
	if _, err := io.ReadFull(c.r, magic[:]); err != nil {
		return
	}
	if !bytes.Equal(magic[:], wire.MagicV2) {
		c.fatal(wire.Fatal(wire.ErrBadProtocol, "unsupported protocol version"))
		return
	}

	var params [][]byte
	var lastTopic []byte // the last topic name validated
	var fins int64
	for {
		line, err := wire.ReadLine(c.r)
		if err != nil {
			return
		}
		params = wire.SplitParams(line, params)
		var werr *wire.Error
		switch string(params[0]) {
		case "PUB", "MPUB":
			werr = c.publish(params, &lastTopic)
		case "FIN":
			if len(params) != 2 {
				werr = wire.Fatal(wire.ErrInvalid, "FIN insufficient number of params")
			} else if _, ok := wire.DecodeID(params[1]); !ok {
				werr = wire.Fatal(wire.ErrInvalid, "FIN invalid message ID")
			} else {
				fins++
			}
		case "RDY":
			werr = c.ready(params)
		case "REQ":
			if len(params) < 2 {
				werr = wire.Fatal(wire.ErrInvalid, "REQ insufficient number of params")
				break
			}
			s.requeued.Add(1)
			if c.ch != nil && !s.cfg.Relay {
				c.ch.taken.Add(-1) // deliver it again
			}
			c.release(1)
		case "TOUCH", "NOP":
		case "IDENTIFY":
			werr = c.identify()
		case "SUB":
			werr = c.subscribe(params, &pump)
		case "CLS":
			c.closeWait()
		default:
			werr = wire.Fatal(wire.ErrInvalid, "invalid command "+string(params[0]))
		}
		if werr != nil {
			c.fatal(werr)
			return
		}
		if c.r.Buffered() == 0 {
			// End of a read batch: apply FINs, flush responses.
			if fins > 0 {
				c.finish(fins)
				fins = 0
			}
			c.wmu.Lock()
			err := c.w.Flush()
			c.wmu.Unlock()
			if err != nil {
				return
			}
		}
	}
}

// fatal sends an error frame; the caller then closes the connection.
func (c *ceilingConn) fatal(e *wire.Error) {
	c.wmu.Lock()
	c.w.Write(wire.AppendFrame(nil, wire.FrameError, []byte(e.Error())))
	c.w.Flush()
	c.wmu.Unlock()
}

func (c *ceilingConn) respond(frame []byte) {
	c.wmu.Lock()
	c.w.Write(frame)
	c.wmu.Unlock()
}

// readBody reads a length-prefixed body of at most limit bytes. The body
// aliases the reader's buffer (or c.big) and is valid until the next read.
func (c *ceilingConn) readBody(limit int) ([]byte, bool) {
	b, err := c.r.Peek(4)
	if err != nil {
		return nil, false
	}
	size := int(int32(binary.BigEndian.Uint32(b)))
	if size <= 0 || size > limit {
		return nil, false
	}
	c.r.Discard(4)
	if size <= c.r.Size() {
		body, err := c.r.Peek(size)
		if err != nil {
			return nil, false
		}
		c.r.Discard(size)
		return body, true
	}
	if cap(c.big) < size {
		c.big = make([]byte, size)
	}
	body := c.big[:size]
	if _, err := io.ReadFull(c.r, body); err != nil {
		return nil, false
	}
	return body, true
}

func (c *ceilingConn) publish(params [][]byte, lastTopic *[]byte) *wire.Error {
	s := c.s
	mpub := len(params[0]) == 4
	if len(params) < 2 {
		return wire.Fatal(wire.ErrInvalid, string(params[0])+" insufficient number of parameters")
	}
	if !bytes.Equal(params[1], *lastTopic) {
		if !wire.ValidName(string(params[1])) {
			return wire.Fatal(wire.ErrBadTopic, string(params[0])+" topic name is not valid")
		}
		*lastTopic = append((*lastTopic)[:0], params[1]...)
	}
	var n int64
	if mpub {
		body, ok := c.readBody(ceilingMaxBodySize)
		if !ok {
			return wire.Fatal(wire.ErrBadBody, "MPUB failed to read body")
		}
		var relayErr error
		var fn func([]byte)
		if s.cfg.Relay {
			fn = func(m []byte) {
				if err := s.relay(m); err != nil {
					relayErr = err
				}
			}
		}
		if werr := wire.SplitMPUB(body, (ceilingMaxBodySize-4)/5, ceilingMaxMsgSize, fn); werr != nil {
			return werr
		}
		if relayErr != nil {
			return wire.Fatal(wire.ErrMPubFailed, "MPUB relay failed")
		}
		n = int64(binary.BigEndian.Uint32(body))
	} else {
		body, ok := c.readBody(ceilingMaxMsgSize)
		if !ok {
			return wire.Fatal(wire.ErrBadMessage, "PUB failed to read message body")
		}
		if s.cfg.Relay {
			if err := s.relay(body); err != nil {
				return wire.Fatal(wire.ErrPubFailed, "PUB relay failed")
			}
		}
		n = 1
	}
	s.published.Add(n)
	if !s.cfg.Relay {
		s.wakeSubscribers()
	}
	c.respond(okFrame)
	return nil
}

func (c *ceilingConn) ready(params [][]byte) *wire.Error {
	n := 1
	if len(params) > 1 {
		v, err := strconv.Atoi(string(params[1]))
		if err != nil || v < 0 || v > c.s.cfg.MaxRDY {
			return wire.Fatal(wire.ErrInvalid, "RDY count out of range")
		}
		n = v
	}
	if c.s.cfg.Relay {
		c.s.mu.Lock()
		c.rdy.Store(int64(n))
		c.s.drainPending()
		c.s.mu.Unlock()
		return nil
	}
	c.rdy.Store(int64(n))
	c.signal()
	return nil
}

// finish applies k FINs.
func (c *ceilingConn) finish(k int64) {
	c.s.finished.Add(k)
	c.release(k)
}

// release gives back k messages of credit.
func (c *ceilingConn) release(k int64) {
	s := c.s
	if s.cfg.Relay {
		s.mu.Lock()
		c.inFlight.Add(-k)
		s.drainPending()
		s.mu.Unlock()
		return
	}
	c.inFlight.Add(-k)
	c.signal()
}

func (c *ceilingConn) identify() *wire.Error {
	body, ok := c.readBody(ceilingMaxBodySize)
	if !ok {
		return wire.Fatal(wire.ErrBadBody, "IDENTIFY failed to read body")
	}
	var req struct {
		FeatureNegotiation bool `json:"feature_negotiation"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return wire.Fatal(wire.ErrBadBody, "IDENTIFY failed to decode JSON body")
	}
	if req.FeatureNegotiation {
		c.respond(c.s.identify)
	} else {
		c.respond(okFrame)
	}
	return nil
}

func (c *ceilingConn) subscribe(params [][]byte, pump *sync.WaitGroup) *wire.Error {
	s := c.s
	if c.ch != nil {
		return wire.Fatal(wire.ErrInvalid, "cannot SUB in current state")
	}
	if len(params) < 3 {
		return wire.Fatal(wire.ErrInvalid, "SUB insufficient number of parameters")
	}
	if !wire.ValidName(string(params[1])) {
		return wire.Fatal(wire.ErrBadTopic, "SUB topic name is not valid")
	}
	if !wire.ValidName(string(params[2])) {
		return wire.Fatal(wire.ErrBadChannel, "SUB channel name is not valid")
	}
	c.ch = s.channel(string(params[2]))
	s.mu.Lock()
	s.subs = append(s.subs, c)
	s.mu.Unlock()
	c.respond(okFrame)
	if !s.cfg.Relay {
		pump.Go(c.pump)
	}
	return nil
}

// closeWait handles CLS: no message is written after CLOSE_WAIT.
func (c *ceilingConn) closeWait() {
	if c.s.cfg.Relay {
		c.s.mu.Lock()
		defer c.s.mu.Unlock()
	}
	c.wmu.Lock()
	c.closing = true
	c.w.Write(closeWaitFrame)
	c.wmu.Unlock()
}

// deliver writes one relayed message and flushes it. s.mu is held.
func (c *ceilingConn) deliver(body []byte) error {
	s := c.s
	s.nextID++
	c.inFlight.Add(1)
	s.sent.Add(1)
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.hdr = wire.AppendMessageHeader(c.hdr[:0], time.Now().UnixNano(), 1, wire.EncodeID(s.nextID), len(body))
	c.w.Write(c.hdr)
	c.w.Write(body)
	return c.w.Flush()
}

// pump streams pre-built frames to a source subscriber while it has credit
// and its channel has messages. It returns when serve returns.
func (c *ceilingConn) pump() {
	s := c.s
	for {
		n := c.rdy.Load() - c.inFlight.Load()
		if n > 0 {
			n = c.ch.take(min(n, int64(s.blockFrames)), &s.published)
		}
		if n <= 0 {
			select {
			case <-c.wake:
				continue
			case <-c.done:
				return
			}
		}
		c.wmu.Lock()
		if c.closing {
			c.wmu.Unlock()
			c.ch.taken.Add(-n)
			<-c.done
			return
		}
		c.inFlight.Add(n)
		_, err := c.w.Write(s.block[:int(n)*s.frameLen])
		if err == nil {
			err = c.w.Flush()
		}
		c.wmu.Unlock()
		s.sent.Add(n)
		if err != nil {
			return
		}
	}
}
