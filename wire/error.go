package wire

// Error codes sent in error frames (frame type 1) as "<CODE> <description>".
const (
	ErrInvalid        = "E_INVALID"
	ErrBadBody        = "E_BAD_BODY"
	ErrBadTopic       = "E_BAD_TOPIC"
	ErrBadChannel     = "E_BAD_CHANNEL"
	ErrBadMessage     = "E_BAD_MESSAGE"
	ErrBadProtocol    = "E_BAD_PROTOCOL"
	ErrPubFailed      = "E_PUB_FAILED"
	ErrMPubFailed     = "E_MPUB_FAILED"
	ErrDPubFailed     = "E_DPUB_FAILED"
	ErrFinFailed      = "E_FIN_FAILED"
	ErrReqFailed      = "E_REQ_FAILED"
	ErrTouchFailed    = "E_TOUCH_FAILED"
	ErrAuthFirst      = "E_AUTH_FIRST"
	ErrAuthFailed     = "E_AUTH_FAILED"
	ErrAuthDisabled   = "E_AUTH_DISABLED"
	ErrAuthError      = "E_AUTH_ERROR"
	ErrUnauthorized   = "E_UNAUTHORIZED"
	ErrIdentifyFailed = "E_IDENTIFY_FAILED"
	ErrSubFailed      = "E_SUB_FAILED"
)

// Error is a protocol error: its code, a human description, and whether the
// server closes the connection after sending it. Only E_FIN_FAILED,
// E_REQ_FAILED and E_TOUCH_FAILED are non-fatal in NSQ.
type Error struct {
	Code  string
	Desc  string
	Fatal bool
}

// Fatal returns a fatal protocol error.
func Fatal(code, desc string) *Error { return &Error{Code: code, Desc: desc, Fatal: true} }

// NonFatal returns an error after which the connection stays open.
func NonFatal(code, desc string) *Error { return &Error{Code: code, Desc: desc} }

// Error returns the text sent on the wire: "<CODE> <description>", or just
// the code when there is no description.
func (e *Error) Error() string {
	if e.Desc == "" {
		return e.Code
	}
	return e.Code + " " + e.Desc
}
