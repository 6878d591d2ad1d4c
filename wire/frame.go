package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Frame types.
const (
	FrameResponse int32 = 0
	FrameError    int32 = 1
	FrameMessage  int32 = 2
)

// Well-known response bodies.
var (
	OK         = []byte("OK")
	CloseWait  = []byte("CLOSE_WAIT")
	Heartbeat  = []byte("_heartbeat_")
	MagicV1    = []byte("  V1")
	MagicV2    = []byte("  V2")
	newline    = []byte{'\n'}
	errShort   = errors.New("wire: message shorter than its header")
	errBadSize = errors.New("wire: bad frame size")
)

// MessageHeaderLength is the size of a message's header inside a message
// frame: timestamp (8), attempts (2) and ID (16).
const MessageHeaderLength = 8 + 2 + IDLength

// FrameHeaderLength is the size prefix plus the frame type.
const FrameHeaderLength = 8

// AppendFrame appends one frame of type typ carrying data.
func AppendFrame(dst []byte, typ int32, data []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(data)+4))
	dst = binary.BigEndian.AppendUint32(dst, uint32(typ))
	return append(dst, data...)
}

// AppendMessageHeader appends the frame header and message header of a
// message frame whose body is bodyLen bytes; the caller appends or writes the
// body itself, which lets a server copy the body straight from its log into
// a connection's buffer.
func AppendMessageHeader(dst []byte, ts int64, attempts uint16, id ID, bodyLen int) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(4+MessageHeaderLength+bodyLen))
	dst = binary.BigEndian.AppendUint32(dst, uint32(FrameMessage))
	dst = binary.BigEndian.AppendUint64(dst, uint64(ts))
	dst = binary.BigEndian.AppendUint16(dst, attempts)
	return append(dst, id[:]...)
}

// AppendMessage appends a complete message frame.
func AppendMessage(dst []byte, ts int64, attempts uint16, id ID, body []byte) []byte {
	dst = AppendMessageHeader(dst, ts, attempts, id, len(body))
	return append(dst, body...)
}

// Message is a decoded message frame. Body aliases the frame data.
type Message struct {
	Timestamp int64
	Attempts  uint16
	ID        ID
	Body      []byte
}

// DecodeMessage decodes the data of a message frame.
func DecodeMessage(data []byte) (Message, error) {
	var m Message
	if len(data) < MessageHeaderLength {
		return m, errShort
	}
	m.Timestamp = int64(binary.BigEndian.Uint64(data[0:8]))
	m.Attempts = binary.BigEndian.Uint16(data[8:10])
	copy(m.ID[:], data[10:26])
	m.Body = data[26:]
	return m, nil
}

// ReadFrame reads one frame of at most maxSize data bytes. It refuses a
// larger or negative size before allocating.
func ReadFrame(r io.Reader, maxSize int) (typ int32, data []byte, err error) {
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return 0, nil, err
	}
	size := int32(binary.BigEndian.Uint32(hdr[:4]))
	if size < 4 || int(size)-4 > maxSize {
		return 0, nil, fmt.Errorf("%w: %d", errBadSize, size)
	}
	if _, err := io.ReadFull(r, hdr[4:8]); err != nil {
		return 0, nil, err
	}
	typ = int32(binary.BigEndian.Uint32(hdr[4:8]))
	data = make([]byte, size-4)
	if _, err := io.ReadFull(r, data); err != nil {
		return 0, nil, err
	}
	return typ, data, nil
}

// AppendCommand appends "NAME p1 p2\n" and, when body is non-nil, the
// length-prefixed body.
func AppendCommand(dst []byte, name string, body []byte, params ...string) []byte {
	dst = append(dst, name...)
	for _, p := range params {
		dst = append(dst, ' ')
		dst = append(dst, p...)
	}
	dst = append(dst, newline...)
	if body != nil {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
		dst = append(dst, body...)
	}
	return dst
}

// AppendMPUBBody appends an MPUB body: the count, then each length-prefixed
// message. The caller prefixes it with its total length (AppendCommand does).
func AppendMPUBBody(dst []byte, bodies [][]byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(bodies)))
	for _, b := range bodies {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(b)))
		dst = append(dst, b...)
	}
	return dst
}
