// Package wire is NSQ's TCP protocol as bytes: the V1 and V2 magics, command
// lines, length-prefixed bodies, frames, the message layout, message IDs,
// topic and channel name rules and the protocol error codes.
//
// It is shared by nsqd, nsqlookupd, nsq_bench and the tests. It starts no
// goroutines and holds no state; every function is safe for concurrent use.
//
// # Format
//
// All binary integers are big-endian.
//
//	magic     "  V2" (client to nsqd) or "  V1" (nsqd to nsqlookupd)
//	command   NAME [SP param]* LF       a trailing CR is dropped; params split on single spaces
//	body      int32 size, size bytes    follows IDENTIFY, AUTH, PUB, DPUB, MPUB
//	mpub body int32 count, then count × (int32 size, size bytes)
//	frame     int32 size (= 4 + len(data)), int32 type, data
//	          type 0 response, 1 error, 2 message
//	message   int64 timestamp (ns), uint16 attempts, 16 ASCII hex bytes ID, body
//
// Every length is checked against its limit before anything is allocated or
// read, so a hostile peer cannot make a reader allocate more than the limit.
package wire
