package nsqlookupd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/nsqx/nsqx/internal/version"
)

// httpShutdownTimeout bounds how long Run waits for HTTP requests in flight
// (a pprof profile can take 30s) before closing their connections.
const httpShutdownTimeout = 5 * time.Second

// Server is one nsqlookupd: a registry, the TCP listener nsqd registers
// through and the HTTP listener clients query.
type Server struct {
	cfg           *Config
	log           *slog.Logger
	reg           *registry
	tcpLn         net.Listener
	httpLn        net.Listener
	httpSrv       *http.Server
	identifyReply []byte

	quit    chan struct{} // closed when shutdown starts; stops the accept backoff
	connsWG sync.WaitGroup

	mu      sync.Mutex
	closing bool
	conns   map[net.Conn]struct{} // open TCP connections
	httpNew map[net.Conn]struct{} // HTTP connections yet to send a request
}

// New validates cfg and opens both listeners. Call Run to serve; Run also
// closes the listeners.
func New(cfg *Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hostname, err := os.Hostname()
	if err != nil {
		return nil, fmt.Errorf("hostname: %w", err)
	}
	s := &Server{
		cfg:     cfg,
		log:     logger,
		reg:     newRegistry(cfg.InactiveProducerTimeout, cfg.TombstoneLifetime, time.Now),
		quit:    make(chan struct{}),
		conns:   map[net.Conn]struct{}{},
		httpNew: map[net.Conn]struct{}{},
	}
	if s.tcpLn, err = net.Listen("tcp", cfg.TCPAddress); err != nil {
		return nil, fmt.Errorf("listen --tcp-address %s: %w", cfg.TCPAddress, err)
	}
	if s.httpLn, err = net.Listen("tcp", cfg.HTTPAddress); err != nil {
		s.tcpLn.Close()
		return nil, fmt.Errorf("listen --http-address %s: %w", cfg.HTTPAddress, err)
	}
	// NSQ encodes this reply from a map, so its keys are sorted.
	s.identifyReply, err = json.Marshal(struct {
		BroadcastAddress string `json:"broadcast_address"`
		Hostname         string `json:"hostname"`
		HTTPPort         int    `json:"http_port"`
		TCPPort          int    `json:"tcp_port"`
		Version          string `json:"version"`
	}{cfg.BroadcastAddress, hostname, port(s.httpLn.Addr()), port(s.tcpLn.Addr()), version.Compat})
	if err != nil {
		s.tcpLn.Close()
		s.httpLn.Close()
		return nil, fmt.Errorf("encode IDENTIFY reply: %w", err)
	}
	s.httpSrv = &http.Server{
		Handler:           s.httpHandler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
		ConnState:         s.httpConnState,
	}
	return s, nil
}

// TCPAddr is the TCP listener's address (useful with port 0).
func (s *Server) TCPAddr() net.Addr { return s.tcpLn.Addr() }

// HTTPAddr is the HTTP listener's address.
func (s *Server) HTTPAddr() net.Addr { return s.httpLn.Addr() }

// Run serves until ctx ends or a listener fails, then closes the listeners
// and every connection and waits for their goroutines. It returns nil after
// a clean shutdown. Call it once.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("TCP listening", "addr", s.TCPAddr().String())
	s.log.Info("HTTP listening", "addr", s.HTTPAddr().String())

	// Each goroutine reports once: nil when shutdown closed its listener.
	errc := make(chan error, 2)
	var wg sync.WaitGroup
	wg.Go(func() { errc <- s.serveTCP() })
	wg.Go(func() {
		err := s.httpSrv.Serve(s.httpLn)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		errc <- err
	})

	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	s.shutdown()
	wg.Wait()
	s.log.Info("stopped")
	return err
}

// serveTCP accepts nsqd connections until the listener is closed. Each
// connection's goroutine is owned by s.connsWG, which shutdown waits for.
func (s *Server) serveTCP() error {
	var backoff time.Duration
	for {
		conn, err := s.tcpLn.Accept()
		if err != nil {
			if s.isClosing() {
				return nil
			}
			if errors.Is(err, net.ErrClosed) {
				return fmt.Errorf("accept: %w", err)
			}
			// Out of file descriptors and the like: wait and retry as
			// net/http does, rather than spin or give up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			s.log.Error("accept failed; retrying", "err", err, "retry_in", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-s.quit:
				t.Stop()
				return nil
			}
			continue
		}
		backoff = 0
		if !s.track(conn) {
			conn.Close()
			return nil
		}
		remote := conn.RemoteAddr().String()
		s.connsWG.Go(func() {
			defer s.untrack(conn)
			defer conn.Close()
			s.log.Debug("peer connected", "remote_addr", remote)
			s.newV1Conn(conn, remote).serve()
		})
	}
}

// shutdown stops accepting, closes every TCP connection and every HTTP
// connection not in a request, lets HTTP requests in flight finish, and
// waits for the connection goroutines.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.closing = true
	close(s.quit)
	conns := make([]net.Conn, 0, len(s.conns)+len(s.httpNew))
	for c := range s.conns {
		conns = append(conns, c)
	}
	for c := range s.httpNew {
		conns = append(conns, c)
	}
	s.mu.Unlock()

	s.tcpLn.Close()
	for _, c := range conns {
		c.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	defer cancel()
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		s.log.Warn("HTTP shutdown timed out; closing connections", "err", err)
		s.httpSrv.Close()
	}
	s.connsWG.Wait()
}

// httpConnState tracks HTTP connections that have not sent a request yet,
// so that shutdown can close them at once: http.Server.Shutdown would wait
// up to 5s for each to start one. A connection arriving during shutdown is
// closed straight away.
func (s *Server) httpConnState(c net.Conn, state http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if state != http.StateNew {
		delete(s.httpNew, c)
		return
	}
	if s.closing {
		c.Close()
		return
	}
	s.httpNew[c] = struct{}{}
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

func port(a net.Addr) int {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.Port
	}
	return 0
}
