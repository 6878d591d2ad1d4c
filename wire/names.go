package wire

import "strings"

// EphemeralSuffix marks a topic or channel that never touches disk and is
// deleted when its last consumer (channel) or last channel (topic) goes away.
const EphemeralSuffix = "#ephemeral"

// MaxNameLength bounds topic and channel names, the #ephemeral suffix
// included.
const MaxNameLength = 64

// ValidName reports whether s is a legal topic or channel name:
// 1..64 bytes of [.a-zA-Z0-9_-], optionally ending in #ephemeral (counted in
// the length). Path separators and other characters are refused, so a valid
// name is always a safe file name.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLength {
		return false
	}
	s = strings.TrimSuffix(s, EphemeralSuffix)
	if len(s) == 0 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// IsEphemeral reports whether a (valid) name ends in #ephemeral.
func IsEphemeral(name string) bool { return strings.HasSuffix(name, EphemeralSuffix) }
