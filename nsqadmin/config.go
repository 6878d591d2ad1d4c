package nsqadmin

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path"
	"strings"
	"time"
)

// Config holds every nsqadmin option. Field comments give the NSQ flag
// name; the TOML key is the flag name with '_' for '-', except where noted.
type Config struct {
	HTTPAddress string // --http-address
	// BasePath is the URL path every route lives under (--base-path), for
	// serving behind a reverse proxy that does not strip it.
	BasePath string

	LookupdHTTPAddresses []string // --lookupd-http-address (cfg nsqlookupd_http_addresses)
	NSQDHTTPAddresses    []string // --nsqd-http-address (cfg nsqd_http_addresses)

	GraphiteURL         string        // --graphite-url
	ProxyGraphite       bool          // --proxy-graphite
	StatsdPrefix        string        // --statsd-prefix
	StatsdCounterFormat string        // --statsd-counter-format
	StatsdGaugeFormat   string        // --statsd-gauge-format
	StatsdInterval      time.Duration // --statsd-interval

	NotificationHTTPEndpoint string // --notification-http-endpoint

	HTTPClientConnectTimeout        time.Duration // --http-client-connect-timeout
	HTTPClientRequestTimeout        time.Duration // --http-client-request-timeout
	HTTPClientTLSInsecureSkipVerify bool          // --http-client-tls-insecure-skip-verify
	HTTPClientTLSRootCAFile         string        // --http-client-tls-root-ca-file
	HTTPClientTLSCert               string        // --http-client-tls-cert
	HTTPClientTLSKey                string        // --http-client-tls-key
	// HTTPClientAuthSecret is sent as a bearer token to every node
	// (--http-client-auth-secret, nsqx only).
	HTTPClientAuthSecret string

	AllowConfigFromCIDR string   // --allow-config-from-cidr ("" allows any address)
	ACLHTTPHeader       string   // --acl-http-header
	AdminUsers          []string // --admin-user (cfg admin_users)

	// DevStaticDir serves /static/ from this directory instead of the
	// embedded assets (--dev-static-dir), for editing the UI live.
	DevStaticDir string

	// LogLevel is the level of Logger's handler, changed at runtime by
	// PUT /config/log_level. Nil means the level cannot be changed.
	LogLevel *slog.LevelVar
	// Logger receives the daemon's logs; nil discards them.
	Logger *slog.Logger

	// RefreshInterval is how often the UI refreshes a page's figures.
	// nsqx only; zero means 5s.
	RefreshInterval time.Duration
	// ChartInterval is how often the UI's live charts poll the JSON API.
	// nsqx only; zero means 2s.
	ChartInterval time.Duration
}

// DefaultConfig returns NSQ 1.3's defaults. Exactly one of
// LookupdHTTPAddresses and NSQDHTTPAddresses must be set before New.
func DefaultConfig() *Config {
	return &Config{
		HTTPAddress:              "0.0.0.0:4171",
		BasePath:                 "/",
		StatsdPrefix:             "nsq.%s",
		StatsdCounterFormat:      "stats.counters.%s.count",
		StatsdGaugeFormat:        "stats.gauges.%s",
		StatsdInterval:           60 * time.Second,
		HTTPClientConnectTimeout: 2 * time.Second,
		HTTPClientRequestTimeout: 5 * time.Second,
		AllowConfigFromCIDR:      "127.0.0.1/8",
		ACLHTTPHeader:            "X-Forwarded-User",
		LogLevel:                 new(slog.LevelVar),
	}
}

// Validate reports every invalid option, each naming its flag.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if c.HTTPAddress == "" {
		bad("http-address", "must not be empty")
	}
	switch {
	case len(c.LookupdHTTPAddresses) == 0 && len(c.NSQDHTTPAddresses) == 0:
		errs = append(errs, errors.New("--nsqd-http-address or --lookupd-http-address required"))
	case len(c.LookupdHTTPAddresses) > 0 && len(c.NSQDHTTPAddresses) > 0:
		errs = append(errs, errors.New("use --nsqd-http-address or --lookupd-http-address not both"))
	}
	for _, a := range c.LookupdHTTPAddresses {
		if err := checkAddr(a); err != nil {
			bad("lookupd-http-address", "%q: %v", a, err)
		}
	}
	for _, a := range c.NSQDHTTPAddresses {
		if err := checkAddr(a); err != nil {
			bad("nsqd-http-address", "%q: %v", a, err)
		}
	}
	if (c.HTTPClientTLSCert == "") != (c.HTTPClientTLSKey == "") {
		errs = append(errs, errors.New("--http-client-tls-cert and --http-client-tls-key must be given together"))
	}
	if c.HTTPClientConnectTimeout <= 0 {
		bad("http-client-connect-timeout", "%v must be > 0", c.HTTPClientConnectTimeout)
	}
	if c.HTTPClientRequestTimeout <= 0 {
		bad("http-client-request-timeout", "%v must be > 0", c.HTTPClientRequestTimeout)
	}
	if c.AllowConfigFromCIDR != "" {
		if _, _, err := net.ParseCIDR(c.AllowConfigFromCIDR); err != nil {
			bad("allow-config-from-cidr", "%v", err)
		}
	}
	if c.GraphiteURL != "" {
		if u, err := url.Parse(c.GraphiteURL); err != nil || u.Scheme == "" || u.Host == "" {
			bad("graphite-url", "%q is not an absolute URL", c.GraphiteURL)
		}
	}
	if c.ProxyGraphite && c.GraphiteURL == "" {
		bad("proxy-graphite", "needs --graphite-url")
	}
	if c.StatsdInterval <= 0 {
		bad("statsd-interval", "%v must be > 0", c.StatsdInterval)
	}
	if c.NotificationHTTPEndpoint != "" {
		if u, err := url.Parse(c.NotificationHTTPEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			bad("notification-http-endpoint", "%q is not an http(s) URL", c.NotificationHTTPEndpoint)
		}
	}
	if c.ACLHTTPHeader == "" && len(c.AdminUsers) > 0 {
		bad("acl-http-header", "must not be empty when --admin-user is set")
	}
	if c.RefreshInterval < 0 || c.ChartInterval < 0 {
		errs = append(errs, errors.New("UI refresh intervals must not be negative"))
	}
	return errors.Join(errs...)
}

// checkAddr accepts host:port, or an http(s) URL with a host, as NSQ's
// clients are given. Names are resolved when queried, not here, so a node
// that is down at start does not stop nsqadmin.
func checkAddr(a string) error {
	if strings.HasPrefix(a, "http://") || strings.HasPrefix(a, "https://") {
		u, err := url.Parse(a)
		if err != nil || u.Host == "" {
			return errors.New("not a valid URL")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(a); err != nil {
		return errors.New("want host:port")
	}
	return nil
}

// normalizeBasePath gives the base path a leading slash and no trailing
// one; "/" becomes "".
func normalizeBasePath(p string) string {
	p = path.Clean("/" + p)
	if p == "/" {
		return ""
	}
	return p
}
