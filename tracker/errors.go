package tracker

import (
	"errors"
	"fmt"

	"github.com/coopcast/coopcast/internal/proto"
)

// Errors that callers and tests branch on.
var (
	// ErrClosed: the server has been closed.
	ErrClosed = errors.New("tracker: closed")
	errBinary = fmt.Errorf("%w: a binary frame", proto.ErrBadMessage)
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

// Reasons in coopcast_rejected_total besides the error codes
// (proto.Code).
const (
	reasonTooLarge = "too-large"    // a message over MaxMessageBytes
	reasonJoinRate = "join-rate"    // an upgrade refused 429: JoinsPerIP
	reasonConnsIP  = "conns-per-ip" // an upgrade refused 429: MaxConnsPerIP
	reasonConns    = "conns"        // an upgrade refused 503: MaxConns
	reasonNoJoin   = "join-timeout" // closed: no join or publish within JoinTimeout
)
