// Package bench is the engine of nsq_bench: raw protocol V2 clients that load
// an nsqd with a few fixed workloads, and the in-process ceiling servers the
// same clients are run against to learn what the machine itself can do.
//
// # Workloads
//
//   - pub: --conns publishers send pre-built MPUB commands (--batch messages of
//     --size bytes) to a topic without channels for --duration, each keeping
//     up to --pipeline commands unacknowledged.
//   - sub: a channel is pre-filled with --count messages (MPUB), then --conns
//     consumers with RDY --rdy drain it, FIN-ing every message.
//   - pubsub: publishers and consumers of one channel run together for
//     --duration; the figure is delivered messages per second. Publishers
//     pause while more than --backlog published messages are undelivered, so
//     the run measures a steady state instead of filling the server.
//   - fanout: as pubsub, with one topic, --channels channels and one consumer
//     per channel; the figure is deliveries per second.
//   - latency: one publisher sends single PUBs at --rate, each body starting
//     with its send time; one unbuffered consumer reports end-to-end latency
//     percentiles.
//
// # Targets
//
// A Target is what a workload runs against. The nsqd target prepares topics
// and channels over nsqd's HTTP API, waits on /stats for a prefill to be
// queued and reads the server's CPU time and RSS from /proc when its pid is
// known. The ceiling target is a Ceiling started for one run.
//
// # Reports
//
// Run alternates nsqd and ceiling runs of each workload (--repeat times) so
// that load from other processes on a shared machine hits both alike, and
// reports each target's median run. Rates are messages per second (for
// pub published, for the others delivered; for latency the publishing
// rate); "bench µs/msg" is this process's CPU per message, which for a
// ceiling run includes the ceiling server itself. Server CPU comes from
// utime+stime in /proc/<pid>/stat, in 10 ms ticks, so it wants runs of a
// few seconds.
//
// # Ceiling servers
//
// Ceiling is the least a V2 server can do for each workload, so the ratio of
// nsqd's figure to the ceiling's, measured in the same run, says how close to
// the machine nsqd gets:
//
//   - as a sink it parses PUB and MPUB commands (validating each MPUB body)
//     and answers OK, storing nothing;
//   - as a source it streams pre-built message frames to subscribers,
//     honouring RDY credit and reading FINs. It never delivers more messages
//     on a channel than were published to it, so sub, pubsub and fanout keep
//     the same accounting as against a broker;
//   - as a relay (CeilingConfig.Relay) it forwards each published body to a
//     subscriber as a message frame and flushes it at once: the latency floor.
//
// # Concurrency
//
// Every workload owns its goroutines: they are started through a group
// created by the workload and all have returned, and every connection has
// been closed, before the workload returns. A workload ends by itself when
// --duration or --count is reached; every read and write carries a deadline
// (--timeout), so a server that stops answering fails the run instead of
// hanging it. A Ceiling's accept loop and connection goroutines are stopped
// by Close, which waits for them.
//
// # Hot path
//
// Commands and message frames are built once per run and written as they
// are. Frames are read in place from a large bufio.Reader (no allocation per
// frame), FINs are written into a reused buffer and flushed once per read
// batch, and nothing on the per-message path calls fmt.
package bench
