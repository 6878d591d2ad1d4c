package wire

import (
	"bufio"
	"encoding/binary"
	"errors"
	"io"
)

// ErrLineTooLong is returned by ReadLine when a command line does not fit
// the reader's buffer. The connection cannot be resynchronised after it.
var ErrLineTooLong = errors.New("command line too long")

// ReadLine reads one command line without its LF and without a trailing CR.
// The line is at most the reader's buffer size; a longer one returns
// ErrLineTooLong, so a peer that never sends LF pins no more memory than the
// buffer. The returned slice is valid until the next read from r.
func ReadLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, ErrLineTooLong
		}
		if errors.Is(err, io.EOF) && len(line) > 0 {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// SplitParams splits a command line on single spaces into dst[:0], the way
// NSQ does: no trimming, so "SUB  a" has an empty second field. The slices
// alias line.
func SplitParams(line []byte, dst [][]byte) [][]byte {
	dst = dst[:0]
	start := 0
	for i, c := range line {
		if c == ' ' {
			dst = append(dst, line[start:i])
			start = i + 1
		}
	}
	return append(dst, line[start:])
}

// ReadSize reads a big-endian int32 length prefix.
func ReadSize(r io.Reader) (int32, error) {
	var b [4]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(b[:])), nil
}

// MPUB body errors, as (code, description) pairs the server reports.
var (
	errMPUBCount    = Fatal(ErrBadBody, "MPUB invalid message count")
	errMPUBTrailing = Fatal(ErrBadBody, "MPUB body has bytes after its last message")
	errMPUBShort    = Fatal(ErrBadBody, "MPUB body shorter than its messages")
)

// SplitMPUB walks an MPUB body (count, then length-prefixed messages) that
// has already been read in full, calling fn with each message, which aliases
// body. It checks the count against maxCount and each length against
// 1..maxMsgSize before touching the message. fn is not called at all unless
// the whole body is valid, so a publish is all or nothing.
func SplitMPUB(body []byte, maxCount, maxMsgSize int, fn func(msg []byte)) *Error {
	if len(body) < 4 {
		return errMPUBCount
	}
	n := int32(binary.BigEndian.Uint32(body))
	if n <= 0 || int(n) > maxCount {
		return Fatal(ErrBadBody, "MPUB invalid message count "+itoa(int64(n)))
	}
	// First pass: validate.
	rest := body[4:]
	for i := int32(0); i < n; i++ {
		if len(rest) < 4 {
			return errMPUBShort
		}
		size := int32(binary.BigEndian.Uint32(rest))
		if size <= 0 {
			return Fatal(ErrBadMessage, "MPUB invalid message("+itoa(int64(i))+") body size "+itoa(int64(size)))
		}
		if int(size) > maxMsgSize {
			return Fatal(ErrBadMessage, "MPUB message too big "+itoa(int64(size))+" > "+itoa(int64(maxMsgSize)))
		}
		rest = rest[4:]
		if len(rest) < int(size) {
			return errMPUBShort
		}
		rest = rest[size:]
	}
	if len(rest) != 0 {
		return errMPUBTrailing
	}
	if fn == nil {
		return nil
	}
	rest = body[4:]
	for i := int32(0); i < n; i++ {
		size := binary.BigEndian.Uint32(rest)
		fn(rest[4 : 4+size])
		rest = rest[4+size:]
	}
	return nil
}

// itoa formats an integer without fmt (used on error paths only, but keeps
// the package free of fmt on anything a server calls per command).
func itoa(v int64) string {
	var b [20]byte
	i := len(b)
	neg := v < 0
	u := uint64(v)
	if neg {
		u = uint64(-v)
	}
	for {
		i--
		b[i] = byte('0' + u%10)
		u /= 10
		if u == 0 {
			break
		}
	}
	if neg {
		i--
		b[i] = '-'
	}
	return string(b[i:])
}
