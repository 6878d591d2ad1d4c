package wire

// IDLength is the length of a message ID on the wire: 16 ASCII hex digits.
const IDLength = 16

// ID is a message ID as sent on the wire.
type ID [IDLength]byte

const hexDigits = "0123456789abcdef"

// EncodeID writes a 64-bit ID as 16 lower-case hex digits, most significant
// first, so the text sorts like the number.
func EncodeID(v uint64) ID {
	var id ID
	for i := IDLength - 1; i >= 0; i-- {
		id[i] = hexDigits[v&0xf]
		v >>= 4
	}
	return id
}

// DecodeID parses 16 hex digits (either case) back to the 64-bit ID.
// ok is false when b is not exactly 16 hex digits.
func DecodeID(b []byte) (v uint64, ok bool) {
	if len(b) != IDLength {
		return 0, false
	}
	for _, c := range b {
		var d byte
		switch {
		case c >= '0' && c <= '9':
			d = c - '0'
		case c >= 'a' && c <= 'f':
			d = c - 'a' + 10
		case c >= 'A' && c <= 'F':
			d = c - 'A' + 10
		default:
			return 0, false
		}
		v = v<<4 | uint64(d)
	}
	return v, true
}
