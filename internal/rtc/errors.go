package rtc

import "errors"

// Errors callers branch on.
var (
	// ErrClosed: the link is closed.
	ErrClosed = errors.New("rtc: link closed")
	// ErrNotOpen: the data channel is not open yet.
	ErrNotOpen = errors.New("rtc: data channel not open")
	// ErrNotOffer: Accept was given something other than an offer.
	ErrNotOffer = errors.New("rtc: signal is not an offer")
	// ErrEmptySignal: a signal with neither SDP nor candidate.
	ErrEmptySignal = errors.New("rtc: empty signal")
	// ErrGatherTimeout: ICE gathering did not finish.
	ErrGatherTimeout = errors.New("rtc: ICE candidate gathering timed out")
)
