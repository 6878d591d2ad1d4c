// Package nsqd is the broker: NSQ's TCP protocol V2 and HTTP API over topics
// and channels.
//
// # Data flow
//
// publish → topic log → channel cursors → consumer connections → in-flight →
// FIN / REQ / timeout.
//
// A Topic stores each message once, in its log (log.go): an append-only
// sequence of segments, each a large byte buffer plus an offset index, so a
// queued message is a few bytes in a buffer and never a heap object. A
// Channel is a cursor into its topic's log plus the messages it owns behind
// the cursor (in-flight, deferred, requeued), kept as plain value records in
// slices and index heaps. Fan-out to ten channels costs ten cursors, not ten
// copies. A segment is released once every cursor has passed it and no owned
// message points into it.
//
// Delivery is pulled by each consumer connection's pump: while it has
// credit (RDY − in-flight) it takes a batch of messages from its channel
// under one lock acquisition, encodes their frames straight from the log into
// its buffered writer, and flushes when the client is no longer ready, when
// its output-buffer timeout fires, or when the buffer fills. The pump is a
// goroutine that exists only while there is something to deliver: a channel
// wakes a consumer once per batch (conn.wake), which starts the pump or tells
// the running one to look again, so an idle connection costs one goroutine.
// Heartbeats and the output-buffer timeout are timers (time.AfterFunc).
//
// In-flight messages are threaded into one list per consumer in deadline
// order (a consumer's deadlines are its delivery times plus its own
// msg_timeout), so FIN, REQ and TOUCH are a lookup in an open-addressing
// table of IDs (idTable) and an unlink;
// deferred messages live in a per-channel heap by due time. One scanner
// goroutine per Server wakes at the earliest deadline of any channel.
//
// # Transport and auth
//
// A connection's bytes pass through layers (transport.go): the socket, TLS
// once IDENTIFY negotiates it (tls.go), then snappy or deflate
// (compress.go). The read loop swaps them during IDENTIFY holding conn.wmu,
// so the pump never writes to a layer being replaced; without TLS or
// compression the output buffer writes straight to the socket. AUTH and
// the PUB/SUB checks ask the auth servers (auth.go) from the read loop;
// with auth on, the HTTP API checks credentials the same way
// (http_auth.go).
//
// # Concurrency
//
// Lock order: Server.mu → Topic.mu → Channel.mu → conn.wmu → conn.imu. The
// log has its own lock (log.mu) which is a leaf: it is taken with Topic.mu
// or Channel.mu held, never the other way round.
//
// Goroutines: Server.Run owns the accept loops, the HTTP server, the
// scanner, the syncer, the spiller, the lookupd peers and statsd (an
// errgroup); each accepted connection has a read loop (owned by the accept
// loop's WaitGroup) which owns its pump and timer goroutines (conn.pumpWG):
// on exit it marks the connection closed so none starts, and waits for the
// running ones. Lock order within a connection: Channel.mu → conn.pumpMu.
package nsqd
