package nsqd

import (
	"context"
	"errors"
	"net"
)

// Server is one nsqd.
type Server struct {
	cfg *Config
}

// New validates cfg, locks the data path and opens the listeners.
func New(cfg *Config) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return nil, errors.New("not implemented yet")
}

// Run serves until ctx ends, then shuts down cleanly.
func (s *Server) Run(ctx context.Context) error { return nil }

// TCPAddr is the TCP (or unix) listener's address.
func (s *Server) TCPAddr() net.Addr { return nil }

// HTTPAddr is the HTTP listener's address, nil when HTTP is disabled.
func (s *Server) HTTPAddr() net.Addr { return nil }
