// Package compat runs NSQ client libraries other than go-nsq against a real
// nsqd, to prove the wire compatibility our users depend on. The tests need
// the client's runtime and packages (installed by .ci/run); without them
// they skip, except under CI=true where they must run.
package compat
