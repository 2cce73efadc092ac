package proto

import "errors"

// ErrBadMessage: a client sent something that is not a valid message.
// Decode wraps it in every error about a malformed message.
var ErrBadMessage = errors.New("bad message")

// Code is the code of an "error" message: what the tracker refused and
// why, for a client to branch on. docs/PROTOCOL.md lists which ones close
// the connection.
type Code string

// Error codes sent to clients in "error" messages.
const (
	CodeBadMessage    Code = "bad-message"
	CodeUnknownType   Code = "unknown-type"
	CodeBadJoin       Code = "bad-join"
	CodeNoChannel     Code = "no-channel"
	CodeChannelFull   Code = "channel-full"
	CodeNotPaired     Code = "not-paired"
	CodeUnauthorized  Code = "unauthorized"
	CodeTooSlow       Code = "too-slow"
	CodeState         Code = "bad-state"
	CodeOriginLive    Code = "origin-live"
	CodeResumeRefused Code = "resume-refused" // not fatal: the peer is joined as a new one
	CodeRateLimited   Code = "rate-limited"
	CodeInternal      Code = "internal"
)
