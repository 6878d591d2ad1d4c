// Package diskqueue is the on-disk record format of nsqx's logs and the
// small filesystem interface they are written through. It knows nothing of
// NSQ: a record is an opaque payload.
//
// # Record
//
//	length  uint32 LE  payload length, 1..MaxPayload
//	crc     uint32 LE  CRC-32C (Castagnoli) of the payload
//	hcrc    uint32 LE  CRC-32C of length and crc (finds record starts cheaply)
//	payload length bytes
//
// # Segment file
//
//	magic   8 bytes  "NSQXSEG2"
//	base    uint64 LE  sequence number of the first record
//	        8 bytes  reserved, zero
//	records ...
//
// A segment holds records base, base+1, ... in order. A reader that finds a
// record whose length is impossible or whose CRC does not match counts it
// as corrupt and resynchronises at the next offset where a well-formed
// record with a matching CRC starts; the records after the damage are still
// read. Damage at the very end of the newest segment is a torn write from a
// crash and is truncated on open.
//
// Scan and the encoders hold no state and start no goroutines.
package diskqueue
