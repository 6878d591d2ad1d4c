package nsqlookupd

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"
)

// Config holds every nsqlookupd option. Field comments give the NSQ flag
// name; fields without one are nsqx additions with safe defaults.
type Config struct {
	TCPAddress       string // --tcp-address
	HTTPAddress      string // --http-address
	BroadcastAddress string // --broadcast-address (sent in the IDENTIFY reply)

	// InactiveProducerTimeout hides a producer from /lookup and /nodes when
	// it has not sent IDENTIFY or PING for this long
	// (--inactive-producer-timeout). Zero or less hides every producer.
	InactiveProducerTimeout time.Duration
	// TombstoneLifetime is how long /topic/tombstone hides a producer of a
	// topic from /lookup (--tombstone-lifetime). Zero or less disables
	// tombstones.
	TombstoneLifetime time.Duration

	// HandshakeTimeout closes a TCP connection that has not sent the
	// protocol magic within this time. NSQ waits forever.
	HandshakeTimeout time.Duration
	// IdleTimeout closes a TCP connection that sends no complete command
	// for this long. nsqd pings every 15s, so the default is twice that.
	// NSQ waits forever.
	IdleTimeout time.Duration

	// Logger receives the daemon's logs; nil discards them.
	Logger *slog.Logger
}

// DefaultConfig returns NSQ 1.3's defaults.
func DefaultConfig() *Config {
	host, _ := os.Hostname()
	return &Config{
		TCPAddress:              "0.0.0.0:4160",
		HTTPAddress:             "0.0.0.0:4161",
		BroadcastAddress:        host,
		InactiveProducerTimeout: 300 * time.Second,
		TombstoneLifetime:       45 * time.Second,
		HandshakeTimeout:        10 * time.Second,
		IdleTimeout:             30 * time.Second,
	}
}

// Validate reports every invalid option, each naming its flag.
func (c *Config) Validate() error {
	var errs []error
	bad := func(flag, format string, args ...any) {
		errs = append(errs, fmt.Errorf("--%s: %s", flag, fmt.Sprintf(format, args...)))
	}
	if c.TCPAddress == "" {
		bad("tcp-address", "must not be empty")
	}
	if c.HTTPAddress == "" {
		bad("http-address", "must not be empty")
	}
	// As in NSQ, any InactiveProducerTimeout and TombstoneLifetime is
	// accepted: zero or less hides every producer, or disables tombstones.
	if c.HandshakeTimeout <= 0 {
		errs = append(errs, fmt.Errorf("handshake timeout %v must be > 0", c.HandshakeTimeout))
	}
	if c.IdleTimeout <= 0 {
		errs = append(errs, fmt.Errorf("idle timeout %v must be > 0", c.IdleTimeout))
	}
	return errors.Join(errs...)
}
