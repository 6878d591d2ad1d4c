// Package compat runs NSQ client libraries other than go-nsq against a real
// nsqd, to prove the wire compatibility our users depend on. For nsqjs, the
// Node.js client, that is publishing and consuming over plain TCP, snappy,
// deflate, TLS and TLS with either compression; AUTH against a test auth
// server, allowed and denied; TOUCH and REQ; and discovery through
// nsqlookupd. Each test starts its own servers and runs one script of
// nsqjs/ with node; certificates are made by the test. The tests need the
// client's runtime and packages (installed by .ci/run); without them they
// skip, except under CI=true where they must run.
//
// pynsq, the Python client, cannot be installed in CI, so pynsq_test.go
// replays its observed wire behaviour over raw TCP instead, with our own
// code: its IDENTIFY byte for byte and its handshake order (JSON reply,
// then TLS, then compression); a Writer pipelining PUB, MPUB and DPUB; a
// Reader pipelining SUB and RDY 1, raising RDY on the first message,
// answering heartbeats with NOP, requeueing with and without backoff,
// touching past msg_timeout and hanging up without CLS; a new snappy
// stream for every command and a deflate sync flush after every command.
// It runs over plain TCP, snappy, deflate and TLS with and without either,
// and needs nothing beyond Go.
package compat
