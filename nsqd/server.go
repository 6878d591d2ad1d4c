package nsqd

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/nsqx/nsqx/diskqueue"
	"github.com/nsqx/nsqx/wire"
)

// Server is one nsqd.
type Server struct {
	cfg       *Config
	log       *slog.Logger
	startTime time.Time

	tcpLn   net.Listener
	httpLn  net.Listener
	httpSrv *http.Server
	dirLock *os.File

	// TLS and auth (tls.go, auth.go); nil when not configured.
	tlsConfig *tls.Config
	httpsLn   net.Listener
	httpsSrv  *http.Server
	auth      *authServers

	mu     sync.RWMutex
	topics map[string]*Topic

	connMu     sync.Mutex
	conns      map[uint64]*conn
	connWG     sync.WaitGroup
	nextConnID atomic.Uint64
	closing    atomic.Bool

	scanner *scanner
	spiller *spiller
	fs      diskqueue.FS
	hooks   *topicHooks
	lookup  *lookups
	ctx     context.Context // Run's context, for background work
	bgWG    sync.WaitGroup
	meta    *metaWriter
	health  atomic.Pointer[string]
	metrics *collector // Prometheus /metrics (metrics.go)
}

// New validates cfg, creates and locks the data path, loads metadata and
// opens the listeners.
func New(cfg *Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		cfg:       cfg,
		log:       logger,
		startTime: time.Now(),
		topics:    map[string]*Topic{},
		conns:     map[uint64]*conn{},
	}
	s.scanner = newScanner(s.topicList)
	s.spiller = newSpiller()
	s.fs = cfg.FS
	if s.fs == nil {
		s.fs = diskqueue.OS
	}
	s.metrics = newCollector(s)
	s.fs = s.metrics.timeFsyncs(s.fs)
	s.hooks = &topicHooks{
		newStore:      s.newStore,
		storeFailed:   s.storeFailed,
		storeOK:       s.storeOK,
		persist:       s.persist,
		nodeID:        cfg.NodeID,
		memQueueLimit: cfg.MemQueueSize,
		topicEmptied:  s.ephemeralTopicEmptied,
		channelAdded:  func(t *Topic, c *Channel) { s.lookupChannel(t, c, true) },
		channelGone:   func(t *Topic, c *Channel) { s.lookupChannel(t, c, false) },
	}
	s.lookup = newLookups(s)
	s.ctx = context.Background()
	ok := "OK"
	s.health.Store(&ok)
	var err error
	if s.tlsConfig, err = newTLSConfig(cfg); err != nil {
		return nil, err
	}
	clientTLS, err := newClientTLSConfig(cfg)
	if err != nil {
		return nil, err
	}
	if s.auth, err = newAuthServers(cfg, clientTLS, logger); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(cfg.DataPath, 0o755); err != nil {
		return nil, fmt.Errorf("--data-path %s: %w", cfg.DataPath, err)
	}
	lock, err := lockDir(cfg.DataPath)
	if err != nil {
		return nil, err
	}
	s.dirLock = lock
	s.meta = newMetaWriter(cfg.DataPath, s.log)
	if err := s.loadMetadata(); err != nil {
		s.dirLock.Close()
		return nil, err
	}
	if err := s.loadStores(); err != nil {
		s.dirLock.Close()
		return nil, err
	}
	if err := s.importNSQ(); err != nil { // import.go
		s.dirLock.Close()
		return nil, err
	}

	s.tcpLn, err = listen(cfg.TCPAddress)
	if err != nil {
		s.dirLock.Close()
		return nil, fmt.Errorf("--tcp-address %s: %w", cfg.TCPAddress, err)
	}
	if cfg.HTTPAddress != "" {
		s.httpLn, err = listen(cfg.HTTPAddress)
		if err != nil {
			s.tcpLn.Close()
			s.dirLock.Close()
			return nil, fmt.Errorf("--http-address %s: %w", cfg.HTTPAddress, err)
		}
	}
	if err := s.listenHTTPS(); err != nil {
		s.tcpLn.Close()
		if s.httpLn != nil {
			s.httpLn.Close()
		}
		s.dirLock.Close()
		return nil, err
	}
	return s, nil
}

// A request body must arrive within httpReadTimeout of the request (a
// trickled /pub body cannot pin its buffer forever); idle keep-alive
// connections close after httpIdleTimeout.
const (
	httpReadTimeout = 60 * time.Second
	httpIdleTimeout = 120 * time.Second
)

// listen opens a TCP listener for host:port, or a unix socket for anything
// else (NSQ's rule), replacing a stale socket file.
func listen(addr string) (net.Listener, error) {
	if _, _, err := net.SplitHostPort(addr); err == nil {
		return net.Listen("tcp", addr)
	}
	if fi, err := os.Stat(addr); err == nil && fi.Mode()&os.ModeSocket != 0 {
		os.Remove(addr)
	}
	return net.Listen("unix", addr)
}

// lockDir takes an exclusive flock on the data directory so that a second
// nsqd (ours or NSQ's, which locks the same way) cannot use it.
func lockDir(dir string) (*os.File, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("--data-path %s: %w", dir, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("--data-path %s is in use by another nsqd: %w", dir, err)
	}
	return f, nil
}

// TCPAddr is the TCP (or unix) listener's address.
func (s *Server) TCPAddr() net.Addr { return s.tcpLn.Addr() }

// HTTPAddr is the HTTP listener's address, nil when HTTP is disabled.
func (s *Server) HTTPAddr() net.Addr {
	if s.httpLn == nil {
		return nil
	}
	return s.httpLn.Addr()
}

// Health is "OK" or "NOK - <reason>".
func (s *Server) Health() string { return *s.health.Load() }

// Run serves until ctx ends, then stops accepting, closes every client
// connection, persists metadata and releases the data path.
func (s *Server) Run(ctx context.Context) error {
	defer s.dirLock.Close()
	g, gctx := errgroup.WithContext(ctx)
	s.mu.Lock()
	s.ctx = gctx
	s.mu.Unlock()
	g.Go(func() error { return s.scanner.run(gctx) })
	g.Go(func() error { return s.lookup.run(gctx) })
	g.Go(func() error { return s.syncLoop(gctx) })
	g.Go(func() error { return s.spiller.run(gctx) })
	g.Go(func() error { return s.meta.run(gctx) })
	g.Go(func() error { return s.runStatsd(gctx) })
	g.Go(func() error { return s.acceptLoop(s.tcpLn) })
	if s.httpLn != nil {
		s.httpSrv = &http.Server{
			Handler:           s.httpHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       httpReadTimeout,
			IdleTimeout:       httpIdleTimeout,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		g.Go(func() error {
			if err := s.httpSrv.Serve(s.httpLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("http: %w", err)
			}
			return nil
		})
	}
	if s.httpsLn != nil {
		s.httpsSrv = &http.Server{
			Handler:           s.httpsHandler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       httpReadTimeout,
			IdleTimeout:       httpIdleTimeout,
			ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		}
		g.Go(func() error {
			if err := s.httpsSrv.Serve(s.httpsLn); !errors.Is(err, http.ErrServerClosed) {
				return fmt.Errorf("https: %w", err)
			}
			return nil
		})
	}
	s.log.Info("listening", "tcp", s.tcpLn.Addr().String(), "http", addrString(s.HTTPAddr()), "https", addrString(s.HTTPSAddr()), "data_path", s.cfg.DataPath)
	g.Go(func() error {
		<-gctx.Done()
		s.shutdown()
		return nil
	})
	err := g.Wait()
	s.bgWG.Wait()
	s.meta.writeNow(s.metadata())
	if ferr := s.flushAll(); ferr != nil {
		s.log.Error("saving messages at shutdown failed", "err", ferr)
		err = errors.Join(err, ferr)
	}
	s.log.Info("stopped")
	return err
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func (s *Server) shutdown() {
	s.closing.Store(true)
	s.tcpLn.Close()
	if s.httpSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.httpSrv.Shutdown(ctx)
		cancel()
	}
	if s.httpsSrv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		s.httpsSrv.Shutdown(ctx)
		cancel()
	}
	if s.auth != nil {
		s.auth.close()
	}
	s.connMu.Lock()
	for _, c := range s.conns {
		c.closeConn()
	}
	s.connMu.Unlock()
	s.connWG.Wait()
}

func (s *Server) acceptLoop(ln net.Listener) error {
	for {
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() || errors.Is(err, net.ErrClosed) {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				time.Sleep(10 * time.Millisecond)
				continue
			}
			return fmt.Errorf("accept: %w", err)
		}
		c := newConn(s, s.nextConnID.Add(1), nc)
		s.connMu.Lock()
		if s.closing.Load() {
			s.connMu.Unlock()
			nc.Close()
			continue
		}
		s.conns[c.id] = c
		s.connWG.Add(1)
		s.connMu.Unlock()
		go s.handle(c)
	}
}

// handle reads the protocol magic under a deadline and runs the connection.
func (s *Server) handle(c *conn) {
	defer func() {
		c.closeConn()
		s.connMu.Lock()
		delete(s.conns, c.id)
		s.connMu.Unlock()
		s.metrics.connClosed(c)
		s.connWG.Done()
	}()
	c.nc.SetReadDeadline(time.Now().Add(s.cfg.HandshakeTimeout))
	var magic [4]byte
	if _, err := io.ReadFull(c.r, magic[:]); err != nil {
		c.log.Debug("no protocol magic", "err", err)
		return
	}
	if !bytes.Equal(magic[:], wire.MagicV2) {
		c.log.Info("bad protocol magic", "magic", fmt.Sprintf("%q", magic[:]))
		c.sendFatal(wire.Fatal(wire.ErrBadProtocol, ""))
		return
	}
	c.serve()
}

func (s *Server) connList() []*conn {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	cs := make([]*conn, 0, len(s.conns))
	for _, c := range s.conns {
		cs = append(cs, c)
	}
	sort.Slice(cs, func(i, j int) bool { return cs[i].id < cs[j].id })
	return cs
}

// topicList returns the topics sorted by name.
func (s *Server) topicList() []*Topic {
	s.mu.RLock()
	ts := make([]*Topic, 0, len(s.topics))
	for _, t := range s.topics {
		ts = append(ts, t)
	}
	s.mu.RUnlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].name < ts[j].name })
	return ts
}

func (s *Server) existingTopic(name string) *Topic {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.topics[name]
}

// topicName turns a name still in the read buffer into a string that
// outlives it, reusing an existing topic's name so the common case does not
// allocate.
func (s *Server) topicName(name []byte) string {
	s.mu.RLock()
	t := s.topics[string(name)]
	s.mu.RUnlock()
	if t != nil {
		return t.name
	}
	return string(name)
}

var errExitingServer = errors.New("exiting")

// Topic returns the named topic, creating it if needed. The name must be
// valid (callers check, to give their own error).
func (s *Server) Topic(name string) (*Topic, error) {
	s.mu.RLock()
	t, ok := s.topics[name]
	s.mu.RUnlock()
	if ok {
		return t, nil
	}
	s.mu.Lock()
	if t, ok := s.topics[name]; ok {
		s.mu.Unlock()
		return t, nil
	}
	if s.closing.Load() {
		s.mu.Unlock()
		return nil, errExitingServer
	}
	t = newTopic(name, s.cfg, s.scanner, s.hooks)
	s.topics[name] = t
	ctx := s.ctx
	s.mu.Unlock()
	s.log.Info("topic created", "topic", name)
	if !t.ephemeral {
		s.persist()
	}
	s.lookupTopic(name, true)
	if len(s.lookup.httpAddrs()) > 0 {
		s.bgWG.Go(func() { s.precreateChannels(ctx, t) })
	}
	return t, nil
}

// DeleteTopic removes a topic, its channels and their messages, and
// disconnects its consumers. It reports whether the topic existed.
func (s *Server) DeleteTopic(name string) bool {
	s.mu.Lock()
	t, ok := s.topics[name]
	if ok {
		delete(s.topics, name)
	}
	s.mu.Unlock()
	if !ok {
		return false
	}
	t.close()
	s.metrics.topicClosed(t)
	s.lookupTopic(name, false)
	s.log.Info("topic deleted", "topic", name)
	if !t.ephemeral {
		s.persist()
		t.removeFiles()
	}
	return true
}

func (s *Server) ephemeralTopicEmptied(t *Topic) {
	s.mu.Lock()
	if s.topics[t.name] != t || len(t.channelList()) != 0 {
		s.mu.Unlock()
		return
	}
	delete(s.topics, t.name)
	s.mu.Unlock()
	t.close()
	s.metrics.topicClosed(t)
	s.lookupTopic(t.name, false)
	s.log.Info("ephemeral topic deleted", "topic", t.name)
}

func (s *Server) persist() { s.meta.mark(s.metadata) }
