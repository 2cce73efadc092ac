package tracker

import "errors"

// Errors that callers and tests branch on.
var (
	// ErrClosed: the server has been closed.
	ErrClosed = errors.New("tracker: closed")
	// errBadMessage: a client sent something that is not a valid message.
	errBadMessage = errors.New("bad message")
)

// Error codes sent to clients in "error" messages.
const (
	codeBadMessage   = "bad-message"
	codeUnknownType  = "unknown-type"
	codeBadJoin      = "bad-join"
	codeNoChannel    = "no-channel"
	codeChannelFull  = "channel-full"
	codeNotPaired    = "not-paired"
	codeUnauthorized = "unauthorized"
	codeTooSlow      = "too-slow"
	codeState        = "bad-state"
	codeOriginLive   = "origin-live"
)
