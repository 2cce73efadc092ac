package wire

import "errors"

// Errors callers branch on.
var (
	ErrTruncated    = errors.New("wire: message truncated")
	ErrVersion      = errors.New("wire: unknown version")
	ErrType         = errors.New("wire: unexpected message type")
	ErrTooLarge     = errors.New("wire: too large")
	ErrRange        = errors.New("wire: field out of range")
	ErrBadSignature = errors.New("wire: bad signature")
	ErrHash         = errors.New("wire: data does not match the manifest's hash")
	ErrConflict     = errors.New("wire: fragment differs from one already received")
	ErrOldEpoch     = errors.New("wire: manifest of an earlier epoch of the stream")
)
