package tracker

import (
	"errors"
	"fmt"
)

// Errors that callers and tests branch on.
var (
	// ErrClosed: the server has been closed.
	ErrClosed = errors.New("tracker: closed")
	// errBadMessage: a client sent something that is not a valid message.
	errBadMessage = errors.New("bad message")
	errBinary     = fmt.Errorf("%w: a binary frame", errBadMessage)
)

// ConfigError is what Config.Validate returns: the field that is wrong
// (dotted for nested fields, e.g. "Forest.MaxSlots") and what is wrong
// with it. A command line maps Field to its flag.
type ConfigError struct {
	Field string
	Msg   string // e.g. "must be ≥ 1, got 0"
}

func (e *ConfigError) Error() string { return fmt.Sprintf("tracker: %s %s", e.Field, e.Msg) }

func fieldErr(field, format string, a ...any) error {
	return &ConfigError{Field: field, Msg: fmt.Sprintf(format, a...)}
}

// Error codes sent to clients in "error" messages. docs/PROTOCOL.md lists
// which ones close the connection.
const (
	codeBadMessage    = "bad-message"
	codeUnknownType   = "unknown-type"
	codeBadJoin       = "bad-join"
	codeNoChannel     = "no-channel"
	codeChannelFull   = "channel-full"
	codeNotPaired     = "not-paired"
	codeUnauthorized  = "unauthorized"
	codeTooSlow       = "too-slow"
	codeState         = "bad-state"
	codeOriginLive    = "origin-live"
	codeResumeRefused = "resume-refused" // not fatal: the peer is joined as a new one
	codeRateLimited   = "rate-limited"
	codeBadEvidence   = "bad-evidence" // a corrupt-data complaint whose evidence does not check
	codeEvicted       = "evicted"      // fatal: the peer cheated; its resume token is refused for a while
	codeInternal      = "internal"
)

// Reasons in coopcast_rejected_total besides the codes above.
const (
	reasonTooLarge = "too-large"    // a message over MaxMessageBytes
	reasonJoinRate = "join-rate"    // an upgrade refused 429: JoinsPerIP
	reasonConnsIP  = "conns-per-ip" // an upgrade refused 429: MaxConnsPerIP
	reasonConns    = "conns"        // an upgrade refused 503: MaxConns
	reasonNoJoin   = "join-timeout" // closed: no join or publish within JoinTimeout
)
