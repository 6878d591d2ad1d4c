// Package toolflags is the plumbing the NSQ utilities (nsq_tail, to_nsq,
// nsq_stat, nsq_to_file, nsq_to_http, nsq_to_nsq) share: parsing a flag set
// with -h, --version and usage errors handled the same way in every tool;
// repeatable string flags; --consumer-opt and --producer-opt, passed through
// to a go-nsq Config; the go-nsq logger; --mode, the choice of destination
// among several (round-robin, hostpool, epsilon-greedy); periodic request
// timing logs (--status-every); and the signal context of main.
//
// Nothing here starts a goroutine. Pool and Timings are safe for
// concurrent use; the rest is used by one goroutine at a time.
package toolflags
