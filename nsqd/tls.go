package nsqd

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"time"
)

// TLS, as NSQ negotiates it: a client asks for tls_v1 in IDENTIFY; after
// the JSON reply the server runs the handshake on the raw connection, then
// sends OK over TLS. The HTTPS listener (--https-address) serves the same
// API as HTTP with the same certificate and client-certificate policy.
//
// nsqx's default --tls-min-version is TLS 1.2 (NSQ's is 1.0); tls1.0 and
// tls1.1 are still accepted when asked for.

// tlsHandshakeTimeout bounds the IDENTIFY upgrade handshake (NSQ: 5 s).
const tlsHandshakeTimeout = 5 * time.Second

// newTLSConfig is the server side of --tls-cert, --tls-key,
// --tls-client-auth-policy, --tls-root-ca-file and --tls-min-version; nil
// without a certificate.
func newTLSConfig(cfg *Config) (*tls.Config, error) {
	if cfg.TLSCert == "" && cfg.TLSKey == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", cfg.TLSCert, cfg.TLSKey, err)
	}
	tc := &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   cfg.TLSMinVersion,
	}
	switch cfg.TLSClientAuthPolicy {
	case "require":
		tc.ClientAuth = tls.RequireAnyClientCert
	case "require-verify":
		tc.ClientAuth = tls.RequireAndVerifyClientCert
	}
	if cfg.TLSRootCAFile != "" {
		pool, err := loadCAs(cfg.TLSRootCAFile)
		if err != nil {
			return nil, err
		}
		tc.ClientCAs = pool
	}
	return tc, nil
}

// newClientTLSConfig is what nsqd trusts when it is the client (auth
// servers over HTTPS): the system roots, or --tls-root-ca-file.
func newClientTLSConfig(cfg *Config) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: cfg.TLSMinVersion}
	if cfg.TLSRootCAFile != "" {
		pool, err := loadCAs(cfg.TLSRootCAFile)
		if err != nil {
			return nil, err
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

func loadCAs(file string) (*x509.CertPool, error) {
	pem, err := os.ReadFile(file)
	if err != nil {
		return nil, fmt.Errorf("--tls-root-ca-file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("--tls-root-ca-file %s: no PEM certificate found", file)
	}
	return pool, nil
}

// listenHTTPS opens --https-address when TLS is configured (NSQ's rule:
// TCP only, never a unix socket).
func (s *Server) listenHTTPS() error {
	if s.tlsConfig == nil || s.cfg.HTTPSAddress == "" {
		return nil
	}
	ln, err := net.Listen("tcp", s.cfg.HTTPSAddress)
	if err != nil {
		return fmt.Errorf("--https-address %s: %w", s.cfg.HTTPSAddress, err)
	}
	s.httpsLn = tls.NewListener(ln, s.tlsConfig)
	return nil
}

// HTTPSAddr is the HTTPS listener's address, nil when it is not open.
func (s *Server) HTTPSAddr() net.Addr {
	if s.httpsLn == nil {
		return nil
	}
	return s.httpsLn.Addr()
}

// errUpgraded refuses a second IDENTIFY that asks for a transport the
// connection cannot add any more (NSQ would wrap TLS in TLS).
var errUpgraded = errors.New("connection already upgraded")

// upgradeTLS runs the server handshake over the raw connection and makes
// it the transport. The caller holds wmu (the pump must not write raw bytes
// meanwhile) and has checked that no client bytes are buffered.
func (c *conn) upgradeTLS() error {
	if c.isTLS.Load() || c.compressed {
		return errUpgraded
	}
	tc := tls.Server(c.nc, c.srv.tlsConfig)
	c.nc.SetDeadline(time.Now().Add(tlsHandshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return err
	}
	c.nc.SetDeadline(time.Time{})
	st := tc.ConnectionState()
	c.imu.Lock()
	c.tlsState = &st
	c.imu.Unlock()
	c.rw = tc
	c.setOutput(tc, nil)
	c.isTLS.Store(true)
	return nil
}

// tlsCommonName is the subject CN of the client's certificate, "" without
// one (the auth server's common_name).
func (c *conn) tlsCommonName() string {
	c.imu.Lock()
	defer c.imu.Unlock()
	if c.tlsState == nil || len(c.tlsState.PeerCertificates) == 0 {
		return ""
	}
	return c.tlsState.PeerCertificates[0].Subject.CommonName
}
