// Package clusterinfo is the client nsqadmin uses to see and change a
// cluster: it asks every nsqlookupd (/topics, /channels, /lookup, /nodes)
// and every nsqd (/info, /stats) at once, merges their answers into the
// shapes NSQ's nsqadmin serves, and forwards admin actions (pause, empty,
// delete, tombstone, create) to the nodes that must apply them.
//
// # Failures
//
// A cluster is never all up. Every query goes to all of its nodes
// concurrently, each bounded by the client's connect and request
// timeouts. When some nodes fail the method returns what the others said
// together with a *PartialError naming the failures, so a caller can show
// the page and a warning. Only when every node of a query fails does it
// return a plain error and no result. Write actions never stop at the
// first failed node: they try them all and report the failures as a
// *PartialError, as NSQ does.
//
// # Concurrency
//
// A Client is safe for concurrent use. It owns no goroutines beyond the
// duration of a call: each call starts one goroutine per node it asks and
// waits for all of them before returning. Cancelling the context passed
// to a call cancels its requests. Config.Observe, through which a caller
// counts and times the requests, is called on those goroutines.
package clusterinfo
