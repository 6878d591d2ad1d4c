// Package nsqlookupd is the NSQ directory service: nsqd nodes register the
// topics and channels they hold over TCP protocol V1, and consumers and
// nsqadmin find them over HTTP.
//
// # TCP protocol V1
//
// A peer (nsqd) opens with the four-byte magic "  V1", then sends one
// command line at a time and reads one response per command. Lines end in
// LF; surrounding white space is trimmed and fields are split on single
// spaces.
//
//	PING                          → OK; refreshes the peer's last update
//	IDENTIFY LF int32 size, JSON  → JSON {broadcast_address, hostname,
//	                                http_port, tcp_port, version}
//	REGISTER topic [channel]      → OK; a channel also registers its topic
//	UNREGISTER topic [channel]    → OK; without a channel, also leaves all
//	                                of the topic's channels
//
// A response is an int32 big-endian size followed by that many bytes, with
// no frame type (unlike V2). An error is sent the same way as
// "E_CODE description" and the connection is then closed: every V1 error is
// fatal. The IDENTIFY body must carry broadcast_address, tcp_port,
// http_port and version (E_BAD_BODY otherwise); REGISTER and UNREGISTER
// need IDENTIFY first (E_INVALID) and valid names (E_BAD_TOPIC,
// E_BAD_CHANNEL). A wrong magic is answered "E_BAD_PROTOCOL".
//
// Limits NSQ does not have, so a hostile peer costs a bounded amount: a
// command line is at most 1 KiB, an IDENTIFY body at most 64 KiB (checked
// before allocating; negative sizes refused), the magic must arrive within
// Config.HandshakeTimeout and each command within Config.IdleTimeout (twice
// nsqd's 15s ping interval by default), and each response write has a 5s
// deadline. Each limit is reported to the peer as an error before closing.
// When a connection ends for any reason, all of its peer's registrations
// are removed.
//
// # Registry
//
// The registry (registry.go) is in memory only. It keeps NSQ's three
// categories: identified peers ("client"), topics and channels, each a map
// from peer id (the connection's remote address) to that peer's entry. A
// registration can exist without producers (HTTP /topic/create, or after
// its producers disconnect) and stays listed until deleted, except an
// ephemeral one (#ephemeral name), which is dropped when its last producer
// leaves.
//
// /lookup hides producers that have not pinged within
// Config.InactiveProducerTimeout and producers tombstoned for the topic
// within Config.TombstoneLifetime; /nodes hides only inactive ones. Both
// are evaluated when queried, so nothing needs a sweeper goroutine.
// Lists are sorted (NSQ returns them in map order).
//
// # Concurrency
//
// registry.mu (a RWMutex) guards the registry's maps and tombstones; a
// peer's last update is an atomic so PING does not take the lock. Server.mu
// guards the sets of open connections. Neither lock is held while the
// other is taken.
//
// Goroutines: Run owns the TCP accept loop and the HTTP server (a
// WaitGroup). The accept loop starts one goroutine per connection, owned by
// Server.connsWG. When Run's context ends it closes the TCP listener and
// every connection (which ends their goroutines), shuts the HTTP server
// down, and waits for all of them before returning. A connection's
// goroutine is the only one that touches its v1Conn.
package nsqlookupd
