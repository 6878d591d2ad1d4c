package nsqadmin

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"html/template"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/nsqx/nsqx/internal/clusterinfo"
	"github.com/nsqx/nsqx/internal/version"
)

// httpShutdownTimeout bounds how long Run waits for requests in flight.
const httpShutdownTimeout = 5 * time.Second

// Server is one nsqadmin: an HTTP listener serving the UI and JSON API over
// the cluster named by its Config.
type Server struct {
	cfg      *Config
	log      *slog.Logger
	base     string // normalized BasePath: "" or "/x"
	ln       net.Listener
	srv      *http.Server
	ci       *clusterinfo.Client
	notify   *notifier
	rates    *rateTracker
	metrics  *collector
	pages    map[string]*template.Template
	cidr     *net.IPNet // nil: /config open to all
	graphite *url.URL
	hostname string
	assetTag string // cache-busting query for /static URLs

	mu       sync.RWMutex
	lookupds []string // replaced by PUT /config/nsqlookupd_http_addresses
}

// New validates cfg, loads its TLS files and templates, and listens on
// cfg.HTTPAddress. Call Run to serve.
func New(cfg *Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	tlsCfg, err := clientTLS(cfg)
	if err != nil {
		return nil, err
	}
	hostname, _ := os.Hostname()
	s := &Server{
		cfg:      cfg,
		log:      logger,
		base:     normalizeBasePath(cfg.BasePath),
		rates:    newRateTracker(time.Now),
		hostname: hostname,
		lookupds: slices.Clone(cfg.LookupdHTTPAddresses),
	}
	s.metrics = newCollector(s)
	s.ci = clusterinfo.New(clusterinfo.Config{
		ConnectTimeout: cfg.HTTPClientConnectTimeout,
		RequestTimeout: cfg.HTTPClientRequestTimeout,
		TLS:            tlsCfg,
		Logger:         logger,
		AuthSecret:     cfg.HTTPClientAuthSecret,
		Observe:        s.metrics.upstreamDone,
	})
	s.notify = newNotifier(cfg.NotificationHTTPEndpoint, s.ci, logger, s.metrics.notified)
	if cfg.AllowConfigFromCIDR != "" {
		_, s.cidr, _ = net.ParseCIDR(cfg.AllowConfigFromCIDR) // checked by Validate
	}
	if cfg.GraphiteURL != "" {
		s.graphite, _ = url.Parse(cfg.GraphiteURL) // checked by Validate
	}
	if s.pages, s.assetTag, err = s.parsePages(); err != nil {
		return nil, fmt.Errorf("templates: %w", err)
	}
	if s.ln, err = net.Listen("tcp", cfg.HTTPAddress); err != nil {
		return nil, fmt.Errorf("listen --http-address %s: %w", cfg.HTTPAddress, err)
	}
	s.srv = &http.Server{
		Handler:           s.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	return s, nil
}

// clientTLS builds the TLS configuration for requests to the nodes.
func clientTLS(cfg *Config) (*tls.Config, error) {
	tc := &tls.Config{InsecureSkipVerify: cfg.HTTPClientTLSInsecureSkipVerify}
	if cfg.HTTPClientTLSCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.HTTPClientTLSCert, cfg.HTTPClientTLSKey)
		if err != nil {
			return nil, fmt.Errorf("--http-client-tls-cert/--http-client-tls-key: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if cfg.HTTPClientTLSRootCAFile != "" {
		pem, err := os.ReadFile(cfg.HTTPClientTLSRootCAFile)
		if err != nil {
			return nil, fmt.Errorf("--http-client-tls-root-ca-file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("--http-client-tls-root-ca-file %s: no PEM certificates", cfg.HTTPClientTLSRootCAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// HTTPAddr is the listener's address (useful with port 0).
func (s *Server) HTTPAddr() net.Addr { return s.ln.Addr() }

// Run serves until ctx ends or the listener fails, then stops accepting,
// waits for requests in flight, and delivers the notifications already
// queued (for at most the HTTP client request timeout). It returns nil
// after a clean shutdown. Call it once.
func (s *Server) Run(ctx context.Context) error {
	s.log.Info("nsqadmin starting", "version", version.String("nsqadmin"))
	s.log.Info("HTTP listening", "addr", s.HTTPAddr().String())

	var wg sync.WaitGroup
	notifyCtx, stopNotify := context.WithCancel(context.Background())
	defer stopNotify()
	wg.Go(func() { s.notify.run(notifyCtx) }) // stopped by closing its queue below

	errc := make(chan error, 1)
	wg.Go(func() {
		err := s.srv.Serve(s.ln)
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
	sctx, cancel := context.WithTimeout(context.Background(), httpShutdownTimeout)
	if serr := s.srv.Shutdown(sctx); serr != nil {
		s.log.Warn("HTTP shutdown timed out; closing connections", "err", serr)
		s.srv.Close()
	}
	cancel()
	// No handler runs any more, so nothing enqueues: let the worker drain
	// what is queued, bounded by one request timeout.
	s.notify.close()
	drain := time.AfterFunc(s.cfg.HTTPClientRequestTimeout, stopNotify)
	wg.Wait()
	drain.Stop()
	s.ci.CloseIdleConnections()
	s.log.Info("stopped")
	return err
}

// addrs returns the lookupd and nsqd HTTP addresses currently in use.
func (s *Server) addrs() (lookupds, nsqds []string) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.lookupds, s.cfg.NSQDHTTPAddresses
}

func (s *Server) setLookupds(addrs []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lookupds = addrs
}

// isAdmin reports whether r may perform admin actions: anyone when no
// --admin-user is set, otherwise only a request whose --acl-http-header
// names one of them (set by a trusted authenticating proxy).
func (s *Server) isAdmin(r *http.Request) bool {
	if len(s.cfg.AdminUsers) == 0 {
		return true
	}
	return slices.Contains(s.cfg.AdminUsers, r.Header.Get(s.cfg.ACLHTTPHeader))
}
