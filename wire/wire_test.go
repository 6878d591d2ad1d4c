package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"github.com/nsqx/nsqx/wire"
)

// be32 is a big-endian int32 as it appears on the wire.
func be32(v int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(v)) }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// nameTests are shared with FuzzValidName as its seed corpus.
var nameTests = []struct {
	name string
	want bool
}{
	{"a", true},
	{"topic", true},
	{"A-Z_a.z-0_9", true},
	{".", true}, // NSQ's pattern allows dots anywhere, even alone
	{"..", true},
	{"a#ephemeral", true},
	{strings.Repeat("a", 64), true},
	{strings.Repeat("a", 65), false},
	{strings.Repeat("a", 54) + "#ephemeral", true},  // 64 with the suffix
	{strings.Repeat("a", 55) + "#ephemeral", false}, // 65 with the suffix
	{"", false},
	{"#ephemeral", false},
	{"a#ephemeral#ephemeral", false},
	{"a#Ephemeral", false},
	{"a#ephemeral ", false},
	{"a#b", false},
	{"#", false},
	{"../x", false},
	{"a/b", false},
	{"/", false},
	{`a\b`, false},
	{"a b", false},
	{"a:b", false},
	{"a;b", false},
	{"a\x00", false},
	{"a\n", false},
	{"a\r", false},
	{"é", false},
	{"a*", false},
}

func TestValidName(t *testing.T) {
	for _, tt := range nameTests {
		if got := wire.ValidName(tt.name); got != tt.want {
			t.Errorf("ValidName(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestIsEphemeral(t *testing.T) {
	for _, tt := range []struct {
		name string
		want bool
	}{
		{"a#ephemeral", true},
		{"a", false},
		{"a#ephemera", false},
		{"ephemeral", false},
	} {
		if got := wire.IsEphemeral(tt.name); got != tt.want {
			t.Errorf("IsEphemeral(%q) = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestEncodeID(t *testing.T) {
	for _, tt := range []struct {
		v    uint64
		want string
	}{
		{0, "0000000000000000"},
		{1, "0000000000000001"},
		{0x0123456789abcdef, "0123456789abcdef"},
		{0xfedcba9876543210, "fedcba9876543210"},
		{^uint64(0), "ffffffffffffffff"},
	} {
		id := wire.EncodeID(tt.v)
		if got := string(id[:]); got != tt.want {
			t.Errorf("EncodeID(%#x) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestDecodeID(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want uint64
		ok   bool
	}{
		{"0000000000000000", 0, true},
		{"0123456789abcdef", 0x0123456789abcdef, true},
		{"0123456789ABCDEF", 0x0123456789abcdef, true},
		{"ffffffffffffffff", ^uint64(0), true},
		{"", 0, false},
		{"000000000000000", 0, false},   // 15
		{"00000000000000000", 0, false}, // 17
		{"000000000000000g", 0, false},
		{"000000000000000G", 0, false},
		{"00000000 0000000", 0, false},
		{"-000000000000000", 0, false},
		{"0x00000000000000", 0, false},
	} {
		v, ok := wire.DecodeID([]byte(tt.in))
		if ok != tt.ok || (ok && v != tt.want) {
			t.Errorf("DecodeID(%q) = %#x, %v, want %#x, %v", tt.in, v, ok, tt.want, tt.ok)
		}
	}
}

// IDs sort as text the way they sort as numbers, so consumers that log or
// compare them see publish order.
func TestIDOrder(t *testing.T) {
	vs := []uint64{0, 1, 9, 10, 15, 16, 255, 256, 1 << 40, 1<<63 - 1, 1 << 63, ^uint64(0)}
	for i := 1; i < len(vs); i++ {
		a, b := wire.EncodeID(vs[i-1]), wire.EncodeID(vs[i])
		if bytes.Compare(a[:], b[:]) >= 0 {
			t.Errorf("EncodeID(%#x) = %s sorts at or after EncodeID(%#x) = %s", vs[i-1], a[:], vs[i], b[:])
		}
	}
}

func TestAppendFrame(t *testing.T) {
	for _, tt := range []struct {
		typ  int32
		data string
		want []byte
	}{
		{wire.FrameResponse, "OK", cat(be32(6), be32(0), []byte("OK"))},
		{wire.FrameResponse, "_heartbeat_", cat(be32(15), be32(0), []byte("_heartbeat_"))},
		{wire.FrameError, "E_INVALID x", cat(be32(15), be32(1), []byte("E_INVALID x"))},
		{wire.FrameMessage, "", cat(be32(4), be32(2))},
	} {
		if got := wire.AppendFrame(nil, tt.typ, []byte(tt.data)); !bytes.Equal(got, tt.want) {
			t.Errorf("AppendFrame(%d, %q) = %x, want %x", tt.typ, tt.data, got, tt.want)
		}
	}
}

func TestReadFrame(t *testing.T) {
	for _, tt := range []struct {
		name    string
		in      []byte
		max     int
		typ     int32
		data    string
		wantErr error // nil: any error when bad is set
		bad     bool
	}{
		{name: "ok", in: cat(be32(6), be32(0), []byte("OK")), max: 10, typ: 0, data: "OK"},
		{name: "empty data", in: cat(be32(4), be32(1)), max: 10, typ: 1, data: ""},
		{name: "at max", in: cat(be32(14), be32(2), []byte("0123456789")), max: 10, typ: 2, data: "0123456789"},
		{name: "over max", in: cat(be32(15), be32(2), []byte("0123456789x")), max: 10, bad: true},
		{name: "size below 4", in: cat(be32(3), be32(0)), max: 10, bad: true},
		{name: "negative size", in: cat(be32(-1), be32(0)), max: 10, bad: true},
		{name: "huge size", in: be32(1<<31 - 1), max: 1 << 20, bad: true},
		{name: "no input", in: nil, max: 10, bad: true, wantErr: io.EOF},
		{name: "short size", in: []byte{0, 0}, max: 10, bad: true, wantErr: io.ErrUnexpectedEOF},
		{name: "short type", in: cat(be32(6), []byte{0}), max: 10, bad: true, wantErr: io.ErrUnexpectedEOF},
		{name: "short data", in: cat(be32(6), be32(0), []byte("O")), max: 10, bad: true, wantErr: io.ErrUnexpectedEOF},
	} {
		t.Run(tt.name, func(t *testing.T) {
			typ, data, err := wire.ReadFrame(bytes.NewReader(tt.in), tt.max)
			if tt.bad {
				if err == nil {
					t.Fatalf("ReadFrame(%x) = %d, %q, nil; want an error", tt.in, typ, data)
				}
				if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
					t.Fatalf("ReadFrame(%x) error = %v, want %v", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil || typ != tt.typ || string(data) != tt.data {
				t.Fatalf("ReadFrame(%x) = %d, %q, %v; want %d, %q, nil", tt.in, typ, data, err, tt.typ, tt.data)
			}
		})
	}
}

func TestMessage(t *testing.T) {
	id := wire.EncodeID(0xabc)
	const ts = int64(1700000000123456789)
	got := wire.AppendMessage(nil, ts, 3, id, []byte("body"))
	want := cat(be32(4+26+4), be32(wire.FrameMessage),
		binary.BigEndian.AppendUint64(nil, uint64(ts)), []byte{0, 3}, []byte("0000000000000abc"), []byte("body"))
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendMessage = %x, want %x", got, want)
	}
	hdr := wire.AppendMessageHeader(nil, ts, 3, id, 4)
	if !bytes.Equal(append(hdr, "body"...), want) {
		t.Fatalf("AppendMessageHeader+body = %x, want %x", append(hdr, "body"...), want)
	}
	typ, data, err := wire.ReadFrame(bytes.NewReader(got), 100)
	if err != nil || typ != wire.FrameMessage {
		t.Fatalf("ReadFrame(message) = %d, %v", typ, err)
	}
	m, err := wire.DecodeMessage(data)
	if err != nil {
		t.Fatalf("DecodeMessage: %v", err)
	}
	if m.Timestamp != ts || m.Attempts != 3 || m.ID != id || string(m.Body) != "body" {
		t.Fatalf("DecodeMessage = %+v, want ts %d attempts 3 id %s body %q", m, ts, id[:], "body")
	}
	for n := 0; n < wire.MessageHeaderLength; n++ {
		if _, err := wire.DecodeMessage(data[:n]); err == nil {
			t.Errorf("DecodeMessage(%d bytes) = nil error, want one", n)
		}
	}
	if m, err := wire.DecodeMessage(data[:wire.MessageHeaderLength]); err != nil || len(m.Body) != 0 {
		t.Errorf("DecodeMessage(header only) = %+v, %v; want empty body", m, err)
	}
}

func TestAppendCommand(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cmd    string
		body   []byte
		params []string
		want   []byte
	}{
		{"no params", "NOP", nil, nil, []byte("NOP\n")},
		{"params", "SUB", nil, []string{"t", "c"}, []byte("SUB t c\n")},
		{"body", "PUB", []byte("hi"), []string{"t"}, cat([]byte("PUB t\n"), be32(2), []byte("hi"))},
		{"empty body is sent", "PUB", []byte{}, []string{"t"}, cat([]byte("PUB t\n"), be32(0))},
		{"empty param", "RDY", nil, []string{""}, []byte("RDY \n")},
	} {
		if got := wire.AppendCommand(nil, tt.cmd, tt.body, tt.params...); !bytes.Equal(got, tt.want) {
			t.Errorf("%s: AppendCommand(%q, %q, %q) = %q, want %q", tt.name, tt.cmd, tt.body, tt.params, got, tt.want)
		}
	}
}

func TestAppendMPUBBody(t *testing.T) {
	got := wire.AppendMPUBBody(nil, [][]byte{[]byte("a"), []byte("bc")})
	want := cat(be32(2), be32(1), []byte("a"), be32(2), []byte("bc"))
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendMPUBBody = %x, want %x", got, want)
	}
}

func TestSplitParams(t *testing.T) {
	for _, tt := range []struct {
		line string
		want []string
	}{
		{"NOP", []string{"NOP"}},
		{"SUB t c", []string{"SUB", "t", "c"}},
		{"SUB  c", []string{"SUB", "", "c"}},
		{"RDY ", []string{"RDY", ""}},
		{" ", []string{"", ""}},
		{"", []string{""}},
		{"a\tb", []string{"a\tb"}}, // only spaces split
		{"REQ id 10 extra", []string{"REQ", "id", "10", "extra"}},
	} {
		var got []string
		for _, p := range wire.SplitParams([]byte(tt.line), nil) {
			got = append(got, string(p))
		}
		if !slices.Equal(got, tt.want) {
			t.Errorf("SplitParams(%q) = %q, want %q", tt.line, got, tt.want)
		}
	}
}

func TestSplitParamsReusesDst(t *testing.T) {
	dst := make([][]byte, 0, 8)
	dst = wire.SplitParams([]byte("a b c d"), dst)
	dst = wire.SplitParams([]byte("x y"), dst)
	if len(dst) != 2 || string(dst[0]) != "x" || string(dst[1]) != "y" {
		t.Fatalf("SplitParams after reuse = %q, want [x y]", dst)
	}
	line := []byte("SUB t c")
	if allocs := testing.AllocsPerRun(100, func() { dst = wire.SplitParams(line, dst) }); allocs != 0 {
		t.Errorf("SplitParams with a large enough dst allocates %v times, want 0", allocs)
	}
}

// The smallest bufio.Reader is 16 bytes, so a line of 15 bytes plus LF is the
// longest that fits.
const lineBuf = 16

func TestReadLine(t *testing.T) {
	for _, tt := range []struct {
		name  string
		in    string
		lines []string
		err   error // after the lines
	}{
		{"lf", "NOP\n", []string{"NOP"}, io.EOF},
		{"crlf", "NOP\r\n", []string{"NOP"}, io.EOF},
		{"only one cr dropped", "NOP\r\r\n", []string{"NOP\r"}, io.EOF},
		{"cr inside kept", "a\rb\n", []string{"a\rb"}, io.EOF},
		{"empty line", "\n", []string{""}, io.EOF},
		{"lone crlf", "\r\n", []string{""}, io.EOF},
		{"several", "SUB t c\nRDY 1\r\nFIN x\n", []string{"SUB t c", "RDY 1", "FIN x"}, io.EOF},
		{"nothing", "", nil, io.EOF},
		{"no final lf", "NOP\nRDY", []string{"NOP"}, io.ErrUnexpectedEOF},
		{"lone cr at eof", "\r", nil, io.ErrUnexpectedEOF},
		{"longest that fits", strings.Repeat("x", lineBuf-1) + "\n", []string{strings.Repeat("x", lineBuf-1)}, io.EOF},
		{"one too long", strings.Repeat("x", lineBuf) + "\n", nil, wire.ErrLineTooLong},
		{"never ends", strings.Repeat("x", 3*lineBuf), nil, wire.ErrLineTooLong},
		{"too long after a good one", "NOP\n" + strings.Repeat("x", 2*lineBuf), []string{"NOP"}, wire.ErrLineTooLong},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReaderSize(strings.NewReader(tt.in), lineBuf)
			for _, want := range tt.lines {
				got, err := wire.ReadLine(r)
				if err != nil || string(got) != want {
					t.Fatalf("ReadLine(%q) = %q, %v; want %q, nil", tt.in, got, err, want)
				}
			}
			if got, err := wire.ReadLine(r); !errors.Is(err, tt.err) {
				t.Fatalf("ReadLine(%q) at end = %q, %v; want error %v", tt.in, got, err, tt.err)
			}
		})
	}
}

func TestReadSize(t *testing.T) {
	for _, tt := range []struct {
		in   []byte
		want int32
		err  error
	}{
		{be32(0), 0, nil},
		{be32(5), 5, nil},
		{be32(-1), -1, nil},
		{[]byte{0x7f, 0xff, 0xff, 0xff}, 1<<31 - 1, nil},
		{[]byte{0x80, 0, 0, 0}, -1 << 31, nil},
		{[]byte{0, 0, 1}, 0, io.ErrUnexpectedEOF},
		{nil, 0, io.EOF},
	} {
		got, err := wire.ReadSize(bytes.NewReader(tt.in))
		if !errors.Is(err, tt.err) || (err == nil && got != tt.want) {
			t.Errorf("ReadSize(%x) = %d, %v; want %d, %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}

// mpubTests are shared with FuzzSplitMPUB as its seed corpus. Limits are
// maxCount 10 and maxMsgSize 8.
var mpubTests = []struct {
	name string
	body []byte
	want []string // messages when valid
	err  string   // full wire text of the error
}{
	{"one", cat(be32(1), be32(3), []byte("abc")), []string{"abc"}, ""},
	{"three", cat(be32(3), be32(1), []byte("a"), be32(2), []byte("bc"), be32(8), []byte("12345678")), []string{"a", "bc", "12345678"}, ""},
	{"count zero", be32(0), nil, "E_BAD_BODY MPUB invalid message count 0"},
	{"count negative", be32(-1), nil, "E_BAD_BODY MPUB invalid message count -1"},
	{"count over max", cat(be32(11), bytes.Repeat(cat(be32(1), []byte("x")), 11)), nil, "E_BAD_BODY MPUB invalid message count 11"},
	{"count at max", cat(be32(10), bytes.Repeat(cat(be32(1), []byte("x")), 10)), slices.Repeat([]string{"x"}, 10), ""},
	{"no count", []byte{0, 0, 1}, nil, "E_BAD_BODY MPUB invalid message count"},
	{"empty", nil, nil, "E_BAD_BODY MPUB invalid message count"},
	{"message size zero", cat(be32(1), be32(0)), nil, "E_BAD_MESSAGE MPUB invalid message(0) body size 0"},
	{"second size negative", cat(be32(2), be32(1), []byte("a"), be32(-5)), nil, "E_BAD_MESSAGE MPUB invalid message(1) body size -5"},
	{"message too big", cat(be32(1), be32(9), []byte("123456789")), nil, "E_BAD_MESSAGE MPUB message too big 9 > 8"},
	{"missing size", cat(be32(2), be32(1), []byte("a")), nil, "E_BAD_BODY MPUB body shorter than its messages"},
	{"short size", cat(be32(1), []byte{0, 0}), nil, "E_BAD_BODY MPUB body shorter than its messages"},
	{"short message", cat(be32(1), be32(4), []byte("abc")), nil, "E_BAD_BODY MPUB body shorter than its messages"},
	{"trailing bytes", cat(be32(1), be32(1), []byte("ab")), nil, "E_BAD_BODY MPUB body has bytes after its last message"},
}

func TestSplitMPUB(t *testing.T) {
	for _, tt := range mpubTests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			e := wire.SplitMPUB(tt.body, 10, 8, func(m []byte) { got = append(got, string(m)) })
			if tt.err != "" {
				if e == nil || e.Error() != tt.err || !e.Fatal {
					t.Fatalf("SplitMPUB(%x) = %v, want fatal %q", tt.body, e, tt.err)
				}
				if got != nil {
					t.Fatalf("SplitMPUB(%x) called fn with %q before failing; a publish must be all or nothing", tt.body, got)
				}
				return
			}
			if e != nil || !slices.Equal(got, tt.want) {
				t.Fatalf("SplitMPUB(%x) = %q, %v; want %q, nil", tt.body, got, e, tt.want)
			}
			if e := wire.SplitMPUB(tt.body, 10, 8, nil); e != nil {
				t.Fatalf("SplitMPUB(%x, nil fn) = %v, want nil", tt.body, e)
			}
		})
	}
}

func TestError(t *testing.T) {
	for _, tt := range []struct {
		err   *wire.Error
		text  string
		fatal bool
	}{
		{wire.Fatal(wire.ErrInvalid, "invalid command X"), "E_INVALID invalid command X", true},
		{wire.NonFatal(wire.ErrFinFailed, "FIN x failed"), "E_FIN_FAILED FIN x failed", false},
		{wire.Fatal(wire.ErrBadProtocol, ""), "E_BAD_PROTOCOL", true},
	} {
		if tt.err.Error() != tt.text || tt.err.Fatal != tt.fatal {
			t.Errorf("Error() = %q fatal %v, want %q fatal %v", tt.err.Error(), tt.err.Fatal, tt.text, tt.fatal)
		}
	}
}
