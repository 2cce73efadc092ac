package backoff

import (
	"math/rand/v2"
	"time"
)

// Defaults of Backoff's zero fields.
const (
	DefaultMin = 250 * time.Millisecond
	DefaultMax = 10 * time.Second
)

// Backoff is jittered exponential backoff with equal jitter: the n-th
// delay (from 0) is d/2 + rand·d/2 where d = min(Max, Min·2ⁿ). Half of
// each delay is fixed, so a reconnect never spins, and half is random, so
// clients that lost the same tracker at the same moment come back spread
// out rather than all at once. A Backoff is not safe for concurrent use.
type Backoff struct {
	// Min is the first delay's upper bound. Default 250 ms.
	Min time.Duration
	// Max caps every delay. Default 10 s.
	Max time.Duration
	// Lasted is how long a session must have lasted for the next loss to
	// start again from Min. Default Max: a session that dies sooner than
	// a full backoff step is a flapping server, not a recovered one.
	Lasted time.Duration
	// Rand returns a number in [0, 1). Default math/rand/v2.Float64.
	Rand func() float64

	n int // delays handed out since the last Reset
}

func (b *Backoff) first() time.Duration {
	if b.Min > 0 {
		return b.Min
	}
	return DefaultMin
}

func (b *Backoff) ceiling() time.Duration {
	if b.Max > 0 {
		return max(b.Max, b.first())
	}
	return max(DefaultMax, b.first())
}

// LastedAfter is how long a session must last for Done to reset the
// backoff.
func (b *Backoff) LastedAfter() time.Duration {
	if b.Lasted > 0 {
		return b.Lasted
	}
	return b.ceiling()
}

// Next returns the delay before the next attempt and counts it.
func (b *Backoff) Next() time.Duration {
	d := b.ceiling()
	if b.n < 62 { // beyond, Min·2ⁿ overflows; it is past any cap anyway
		if s := b.first() << b.n; s > 0 && s < d {
			d = s
		}
	}
	b.n++
	r := rand.Float64
	if b.Rand != nil {
		r = b.Rand
	}
	f := r()
	if f < 0 || f >= 1 {
		f = 0
	}
	return d/2 + time.Duration(f*float64(d/2))
}

// Done tells the backoff a session that connected ended after lasting
// for lasted: one that lasted LastedAfter or more resets it.
func (b *Backoff) Done(lasted time.Duration) {
	if lasted >= b.LastedAfter() {
		b.Reset()
	}
}

// Reset starts the schedule again from Min.
func (b *Backoff) Reset() { b.n = 0 }

// Attempts is how many delays Next handed out since the last Reset.
func (b *Backoff) Attempts() int { return b.n }
