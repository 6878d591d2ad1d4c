package nsqd

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/nsqx/nsqx/internal/version"
	"github.com/nsqx/nsqx/wire"
)

// lookupPingInterval is how often nsqd pings each nsqlookupd (NSQ: 15 s).
const lookupPingInterval = 15 * time.Second

// lookupCmd is one REGISTER or UNREGISTER.
type lookupCmd struct {
	register bool
	topic    string
	channel  string
}

// lookups keeps one lookupPeer per --lookupd-tcp-address. The set can be
// changed at run time (PUT /config/nsqlookupd_tcp_addresses).
type lookups struct {
	srv *Server
	log *slog.Logger

	mu    sync.Mutex
	ctx   context.Context // Run's context; nil until run starts
	peers map[string]*lookupPeer
	addrs []string
	wg    sync.WaitGroup
}

func newLookups(s *Server) *lookups {
	return &lookups{srv: s, log: s.log, peers: map[string]*lookupPeer{}, addrs: s.cfg.LookupdTCPAddrs}
}

// run starts a peer per address and stops them all when ctx ends.
func (l *lookups) run(ctx context.Context) error {
	l.mu.Lock()
	l.ctx = ctx
	l.mu.Unlock()
	l.set(l.addresses())
	<-ctx.Done()
	l.mu.Lock()
	for _, p := range l.peers {
		p.cancel()
	}
	l.mu.Unlock()
	l.wg.Wait()
	return nil
}

func (l *lookups) addresses() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.addrs...)
}

// set replaces the set of lookupd addresses, connecting to new ones and
// dropping removed ones.
func (l *lookups) set(addrs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.addrs = append([]string(nil), addrs...)
	if l.ctx == nil || l.ctx.Err() != nil {
		return
	}
	want := map[string]bool{}
	for _, a := range addrs {
		want[a] = true
		if _, ok := l.peers[a]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(l.ctx)
		p := &lookupPeer{srv: l.srv, addr: a, log: l.log.With("lookupd", a), cancel: cancel, kick: make(chan struct{}, 1)}
		l.peers[a] = p
		l.wg.Go(func() { p.run(ctx) })
	}
	for a, p := range l.peers {
		if !want[a] {
			p.cancel()
			delete(l.peers, a)
		}
	}
}

// notify queues a REGISTER/UNREGISTER for every connected lookupd.
func (l *lookups) notify(cmd lookupCmd) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.peers {
		p.enqueue(cmd)
	}
}

// httpAddrs returns the HTTP addresses the lookupds told us in IDENTIFY.
func (l *lookups) httpAddrs() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, p := range l.peers {
		if a := p.httpAddr(); a != "" {
			out = append(out, a)
		}
	}
	return out
}

// lookupPeer is the connection to one nsqlookupd: connect, IDENTIFY,
// register everything, then forward changes and PING; after any error,
// reconnect with backoff and register everything again.
type lookupPeer struct {
	srv    *Server
	addr   string
	log    *slog.Logger
	cancel context.CancelFunc

	mu        sync.Mutex
	queue     []lookupCmd
	connected bool
	http      string
	kick      chan struct{}
}

func (p *lookupPeer) enqueue(c lookupCmd) {
	p.mu.Lock()
	if p.connected {
		p.queue = append(p.queue, c)
	}
	p.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

func (p *lookupPeer) httpAddr() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.http
}

func (p *lookupPeer) run(ctx context.Context) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		start := time.Now()
		err := p.session(ctx)
		p.mu.Lock()
		p.connected = false
		p.queue = nil
		p.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		p.log.Warn("lookupd connection lost", "err", err)
		if time.Since(start) > time.Minute {
			backoff = 100 * time.Millisecond
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 15*time.Second)
	}
}

// lookupTimeout bounds each write to a lookupd and the wait for its reply.
const lookupTimeout = 5 * time.Second

// session runs one connection until an error or ctx ends.
func (p *lookupPeer) session(ctx context.Context) error {
	d := net.Dialer{Timeout: p.srv.cfg.HTTPClientConnectTimeout}
	nc, err := d.DialContext(ctx, "tcp", p.addr)
	if err != nil {
		return err
	}
	// The reader goroutine below is stopped by closing nc (deferred after
	// this) and by done; session waits for it.
	var reader sync.WaitGroup
	defer reader.Wait()
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	defer nc.Close()
	// One goroutine reads every reply, also while idle, so that a lookupd
	// that goes away (a restart) is noticed at once, not at the next PING
	// up to 15 s later, and we register with its successor straight away.
	replies := make(chan lookupReply)
	done := make(chan struct{})
	defer close(done)
	reader.Go(func() { readLookupReplies(bufio.NewReader(nc), replies, done) })
	lc := &lookupConn{nc: nc, replies: replies}

	// Accept changes from now on; everything that exists is registered
	// below, so nothing falls between the two.
	p.mu.Lock()
	p.connected = true
	p.queue = nil
	p.mu.Unlock()

	nc.SetWriteDeadline(time.Now().Add(lookupTimeout))
	if _, err := nc.Write(wire.MagicV1); err != nil {
		return err
	}
	ident, _ := json.Marshal(p.srv.identity())
	reply, err := lc.roundTrip(wire.AppendCommand(nil, "IDENTIFY", ident))
	if err != nil {
		return fmt.Errorf("IDENTIFY: %w", err)
	}
	var info struct {
		BroadcastAddress string `json:"broadcast_address"`
		HTTPPort         int    `json:"http_port"`
	}
	if json.Unmarshal(reply, &info) == nil && info.BroadcastAddress != "" && info.HTTPPort > 0 {
		p.mu.Lock()
		p.http = net.JoinHostPort(info.BroadcastAddress, strconv.Itoa(info.HTTPPort))
		p.mu.Unlock()
	}
	p.log.Info("lookupd connected")
	for _, c := range p.srv.registrations() {
		if err := lc.send(c); err != nil {
			return err
		}
	}
	ping := time.NewTicker(lookupPingInterval)
	defer ping.Stop()
	for {
		p.mu.Lock()
		q := p.queue
		p.queue = nil
		p.mu.Unlock()
		for _, c := range q {
			if err := lc.send(c); err != nil {
				return err
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-p.kick:
		case <-ping.C:
			if _, err := lc.roundTrip([]byte("PING\n")); err != nil {
				return fmt.Errorf("PING: %w", err)
			}
		case r := <-replies:
			// lookupd speaks only when spoken to: this is the connection
			// closing, or a last error (such as its idle timeout) before
			// it does.
			if r.err != nil {
				return r.err
			}
			return fmt.Errorf("unexpected reply %q", r.data)
		}
	}
}

// lookupReply is one (unframed) reply from a lookupd, or the read error
// that ended the connection.
type lookupReply struct {
	data []byte
	err  error
}

// readLookupReplies reads replies from r and hands them over until a read
// fails (the connection is closed) or done is closed.
func readLookupReplies(r *bufio.Reader, replies chan<- lookupReply, done <-chan struct{}) {
	for {
		var rep lookupReply
		size, err := wire.ReadSize(r)
		switch {
		case err != nil:
			rep.err = err
		case size < 0 || size > 1<<20:
			rep.err = fmt.Errorf("bad response size %d", size)
		default:
			rep.data = make([]byte, size)
			_, rep.err = io.ReadFull(r, rep.data)
		}
		select {
		case replies <- rep:
		case <-done:
			return
		}
		if rep.err != nil {
			return
		}
	}
}

// lookupConn is one session's connection: commands are written here and
// their replies come from the reader goroutine.
type lookupConn struct {
	nc      net.Conn
	replies <-chan lookupReply
}

func (lc *lookupConn) send(c lookupCmd) error {
	name := "UNREGISTER"
	if c.register {
		name = "REGISTER"
	}
	params := []string{c.topic}
	if c.channel != "" {
		params = append(params, c.channel)
	}
	_, err := lc.roundTrip(wire.AppendCommand(nil, name, nil, params...))
	if err != nil {
		return fmt.Errorf("%s %s %s: %w", name, c.topic, c.channel, err)
	}
	return nil
}

// roundTrip writes one command and waits for its reply.
func (lc *lookupConn) roundTrip(cmd []byte) ([]byte, error) {
	lc.nc.SetWriteDeadline(time.Now().Add(lookupTimeout))
	if _, err := lc.nc.Write(cmd); err != nil {
		return nil, err
	}
	timer := time.NewTimer(lookupTimeout)
	defer timer.Stop()
	select {
	case r := <-lc.replies:
		if r.err != nil {
			return nil, r.err
		}
		if len(r.data) >= 2 && string(r.data[:2]) == "E_" {
			return nil, errors.New(string(r.data))
		}
		return r.data, nil
	case <-timer.C:
		return nil, fmt.Errorf("no reply within %v", lookupTimeout)
	}
}

// identity is what nsqd tells each lookupd about itself.
func (s *Server) identity() map[string]any {
	host, _ := os.Hostname()
	return map[string]any{
		"version":           version.Compat,
		"tcp_port":          s.broadcastTCPPort(),
		"http_port":         s.broadcastHTTPPort(),
		"hostname":          host,
		"broadcast_address": s.cfg.BroadcastAddress,
		"topology_zone":     s.cfg.TopologyZone,
		"topology_region":   s.cfg.TopologyRegion,
	}
}

func listenerPort(a net.Addr) int {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.Port
	}
	return -1
}

func (s *Server) broadcastTCPPort() int {
	if s.cfg.BroadcastTCPPort > 0 {
		return s.cfg.BroadcastTCPPort
	}
	return listenerPort(s.tcpLn.Addr())
}

func (s *Server) broadcastHTTPPort() int {
	if s.cfg.BroadcastHTTPPort > 0 {
		return s.cfg.BroadcastHTTPPort
	}
	if s.httpLn == nil {
		return 0
	}
	return listenerPort(s.httpLn.Addr())
}

// registrations lists REGISTER commands for everything this nsqd has: a
// topic's channels, or the topic alone when it has none.
func (s *Server) registrations() []lookupCmd {
	var out []lookupCmd
	for _, t := range s.topicList() {
		chans := t.channelList()
		if len(chans) == 0 {
			out = append(out, lookupCmd{register: true, topic: t.name})
			continue
		}
		for _, c := range chans {
			out = append(out, lookupCmd{register: true, topic: t.name, channel: c.name})
		}
	}
	return out
}

// precreateChannels asks every lookupd which channels a new topic has and
// creates the non-ephemeral ones, starting at the topic's first message so
// that none misses what was published while we asked.
func (s *Server) precreateChannels(ctx context.Context, t *Topic) {
	addrs := s.lookup.httpAddrs()
	if len(addrs) == 0 {
		return
	}
	client := &http.Client{Timeout: s.cfg.HTTPClientRequestTimeout}
	for _, a := range addrs {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+a+"/channels?topic="+url.QueryEscape(t.name), nil)
		if err != nil {
			continue
		}
		req.Header.Set("Accept", "application/vnd.nsq; version=1.0")
		resp, err := client.Do(req)
		if err != nil {
			s.log.Warn("asking lookupd for channels failed", "topic", t.name, "lookupd", a, "err", err)
			continue
		}
		var body struct {
			Channels []string `json:"channels"`
			Data     *struct {
				Channels []string `json:"channels"`
			} `json:"data"`
		}
		err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&body)
		resp.Body.Close()
		if err != nil {
			continue
		}
		names := body.Channels
		if body.Data != nil {
			names = body.Data.Channels
		}
		for _, name := range names {
			if !wire.ValidName(name) || wire.IsEphemeral(name) {
				continue
			}
			t.channelFromHead(name)
		}
	}
}

// registerTopic and friends forward lifecycle events to the lookupds.
func (s *Server) lookupTopic(name string, register bool) {
	s.lookup.notify(lookupCmd{register: register, topic: name})
}

func (s *Server) lookupChannel(t *Topic, c *Channel, register bool) {
	s.lookup.notify(lookupCmd{register: register, topic: t.name, channel: c.name})
}

// SetLookupdAddrs changes the lookupds at run time.
func (s *Server) SetLookupdAddrs(addrs []string) { s.lookup.set(addrs) }

// LookupdAddrs returns the current lookupd addresses.
func (s *Server) LookupdAddrs() []string { return s.lookup.addresses() }
