// Package compat runs NSQ client libraries other than go-nsq against a real
// nsqd, to prove the wire compatibility our users depend on. For nsqjs, the
// Node.js client, that is publishing and consuming over plain TCP, snappy,
// deflate, TLS and TLS with either compression; AUTH against a test auth
// server, allowed and denied; TOUCH and REQ; and discovery through
// nsqlookupd. Each test starts its own servers and runs one script of
// nsqjs/ with node; certificates are made by the test. The tests need the
// client's runtime and packages (installed by .ci/run); without them they
// skip, except under CI=true where they must run.
package compat
