package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"

	"github.com/nsqx/nsqx/wire"
)

// FuzzSplitMPUB checks that SplitMPUB never panics, that whatever it
// accepts re-encodes to exactly its input, and that AppendMPUBBody output
// always splits back into the same messages.
func FuzzSplitMPUB(f *testing.F) {
	for _, tt := range mpubTests {
		f.Add(tt.body)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		const maxCount, maxSize = 1 << 10, 1 << 10
		var msgs [][]byte
		if e := wire.SplitMPUB(body, maxCount, maxSize, func(m []byte) { msgs = append(msgs, m) }); e == nil {
			if re := wire.AppendMPUBBody(nil, msgs); !bytes.Equal(re, body) {
				t.Fatalf("SplitMPUB(%x) accepted %q, which re-encodes to %x", body, msgs, re)
			}
		} else if msgs != nil {
			t.Fatalf("SplitMPUB(%x) = %v after calling fn %d times", body, e, len(msgs))
		} else if !e.Fatal || (e.Code != wire.ErrBadBody && e.Code != wire.ErrBadMessage) {
			t.Fatalf("SplitMPUB(%x) = %+v, want a fatal E_BAD_BODY or E_BAD_MESSAGE", body, e)
		}

		// Round trip: cut the input into non-empty messages (the first byte
		// picks the piece length) and split the encoding back.
		if len(body) < 2 {
			return
		}
		step := int(body[0])%16 + 1
		var parts [][]byte
		for rest := body[1:]; len(rest) > 0; {
			n := min(step, len(rest))
			parts = append(parts, rest[:n])
			rest = rest[n:]
		}
		enc := wire.AppendMPUBBody(nil, parts)
		var got [][]byte
		if e := wire.SplitMPUB(enc, len(parts), step, func(m []byte) { got = append(got, m) }); e != nil {
			t.Fatalf("SplitMPUB(AppendMPUBBody(%q)) = %v", parts, e)
		}
		if len(got) != len(parts) {
			t.Fatalf("SplitMPUB(AppendMPUBBody(%q)) = %q", parts, got)
		}
		for i := range got {
			if !bytes.Equal(got[i], parts[i]) {
				t.Fatalf("SplitMPUB(AppendMPUBBody(%q)) = %q", parts, got)
			}
		}
	})
}

// readLines reads every line of in with ReadLine from a reader of size
// bufSize fed by src, returning the lines and the final error.
func readLines(src io.Reader, bufSize int) ([]string, error) {
	r := bufio.NewReaderSize(src, bufSize)
	var lines []string
	for {
		line, err := wire.ReadLine(r)
		if err != nil {
			return lines, err
		}
		lines = append(lines, string(line))
	}
}

// chunkReader returns at most n bytes per Read, as a socket might.
type chunkReader struct {
	b []byte
	n int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	k := min(len(p), c.n, len(c.b))
	copy(p, c.b[:k])
	c.b = c.b[k:]
	return k, nil
}

// FuzzReadLine compares ReadLine with a plain model (split on LF, drop one
// trailing CR, a line longer than the buffer is an error, a final line
// without LF is io.ErrUnexpectedEOF) and checks that the input arriving in
// pieces of any size gives the same result.
func FuzzReadLine(f *testing.F) {
	for _, s := range []string{
		"NOP\n", "NOP\r\n", "SUB t c\nRDY 1\n", "\n\n", "\r\n", "a\rb\n", "NOP",
		strings.Repeat("x", 40) + "\n", "PUB t\n\x00\x00\x00\x02hi",
	} {
		f.Add([]byte(s), uint8(0))
	}
	f.Fuzz(func(t *testing.T, in []byte, chunk uint8) {
		const bufSize = 16
		var want []string
		var wantErr error = io.EOF
		for rest := in; len(rest) > 0; {
			i := bytes.IndexByte(rest, '\n')
			if i < 0 {
				if len(rest) >= bufSize {
					wantErr = wire.ErrLineTooLong
				} else {
					wantErr = io.ErrUnexpectedEOF
				}
				break
			}
			if i+1 > bufSize {
				wantErr = wire.ErrLineTooLong
				break
			}
			want = append(want, string(bytes.TrimSuffix(rest[:i], []byte("\r"))))
			rest = rest[i+1:]
		}
		for _, src := range []io.Reader{bytes.NewReader(in), &chunkReader{b: in, n: int(chunk)%7 + 1}} {
			got, err := readLines(src, bufSize)
			if !errors.Is(err, wantErr) || len(got) != len(want) {
				t.Fatalf("ReadLine(%q) = %q, %v; want %q, %v", in, got, err, want, wantErr)
			}
			for i := range got {
				if got[i] != want[i] {
					t.Fatalf("ReadLine(%q) = %q, want %q", in, got, want)
				}
			}
		}
	})
}

// FuzzSplitParams checks SplitParams against bytes.Split on one space, which
// is what NSQ does.
func FuzzSplitParams(f *testing.F) {
	for _, s := range []string{"NOP", "SUB t c", "SUB  c", "RDY ", " ", "", "REQ 0000000000000000 100"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		got := wire.SplitParams(line, nil)
		want := bytes.Split(line, []byte(" "))
		if len(got) != len(want) {
			t.Fatalf("SplitParams(%q) = %q, want %q", line, got, want)
		}
		for i := range got {
			if !bytes.Equal(got[i], want[i]) {
				t.Fatalf("SplitParams(%q) = %q, want %q", line, got, want)
			}
		}
	})
}

// FuzzDecodeID checks DecodeID against its definition (exactly 16 hex
// digits) and the EncodeID/DecodeID round trip both ways.
func FuzzDecodeID(f *testing.F) {
	for _, s := range []string{"0000000000000000", "0123456789abcdef", "0123456789ABCDEF", "ffffffffffffffff", "000000000000000g", "short", ""} {
		f.Add([]byte(s), uint64(0))
	}
	f.Add([]byte(nil), ^uint64(0))
	f.Add([]byte(nil), uint64(0x0123456789abcdef))
	hex := regexp.MustCompile(`^[0-9a-fA-F]{16}$`)
	f.Fuzz(func(t *testing.T, b []byte, v uint64) {
		got, ok := wire.DecodeID(b)
		if ok != hex.Match(b) {
			t.Fatalf("DecodeID(%q) ok = %v, want %v", b, ok, !ok)
		}
		if ok {
			if id := wire.EncodeID(got); !bytes.Equal(id[:], bytes.ToLower(b)) {
				t.Fatalf("EncodeID(DecodeID(%q)) = %q", b, id[:])
			}
		}
		id := wire.EncodeID(v)
		if back, ok := wire.DecodeID(id[:]); !ok || back != v {
			t.Fatalf("DecodeID(EncodeID(%#x) = %q) = %#x, %v", v, id[:], back, ok)
		}
	})
}

// FuzzReadFrame checks that ReadFrame never panics or reads past the limit,
// and that any frame it accepts re-encodes to the bytes it consumed.
func FuzzReadFrame(f *testing.F) {
	f.Add(wire.AppendFrame(nil, wire.FrameResponse, []byte("OK")))
	f.Add(wire.AppendFrame(nil, wire.FrameError, []byte("E_INVALID x")))
	f.Add(wire.AppendMessage(nil, 1, 1, wire.EncodeID(1), []byte("hi")))
	f.Add(binary.BigEndian.AppendUint32(nil, 1<<31-1))
	f.Add([]byte{0, 0, 0, 3, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 64
		r := bytes.NewReader(in)
		typ, data, err := wire.ReadFrame(r, max)
		if err != nil {
			return
		}
		if len(data) > max {
			t.Fatalf("ReadFrame(%x) returned %d bytes, over the %d limit", in, len(data), max)
		}
		used := in[:len(in)-r.Len()]
		if re := wire.AppendFrame(nil, typ, data); !bytes.Equal(re, used) {
			t.Fatalf("ReadFrame(%x) = %d, %x; re-encodes to %x", in, typ, data, re)
		}
		if typ == wire.FrameMessage {
			m, err := wire.DecodeMessage(data)
			if err != nil {
				if len(data) >= wire.MessageHeaderLength {
					t.Fatalf("DecodeMessage(%x) = %v", data, err)
				}
				return
			}
			if re := wire.AppendMessage(nil, m.Timestamp, m.Attempts, m.ID, m.Body); !bytes.Equal(re, used) {
				t.Fatalf("DecodeMessage(%x) = %+v; re-encodes to %x", data, m, re)
			}
		}
	})
}

// FuzzValidName compares ValidName with NSQ's definition: the pattern from
// internal/protocol/names.go and a length of 1..64, suffix included.
func FuzzValidName(f *testing.F) {
	for _, tt := range nameTests {
		f.Add(tt.name)
	}
	pattern := regexp.MustCompile(`^[.a-zA-Z0-9_-]+(#ephemeral)?$`)
	f.Fuzz(func(t *testing.T, name string) {
		want := len(name) >= 1 && len(name) <= 64 && pattern.MatchString(name)
		if got := wire.ValidName(name); got != want {
			t.Fatalf("ValidName(%q) = %v, want %v", name, got, want)
		}
		if want && strings.ContainsAny(name, `/\`) {
			t.Fatalf("ValidName(%q) accepts a path separator", name)
		}
	})
}
