package backoff

import "time"

// DefaultSummaryEvery is how often an Outage with no Every asks for a
// "still down" line.
const DefaultSummaryEvery = 30 * time.Second

// Outage follows one connection's ups and downs and says which of them
// deserve a log line: the first failure (lost), a summary while it stays
// down (every Every), and the first success after (back). Failures in
// between are only counted. It is not safe for concurrent use.
type Outage struct {
	// Every is how often a Failed asks for a summary while down. Default
	// 30 s.
	Every time.Duration

	down     bool
	since    time.Time // when the outage began
	logged   time.Time // when Failed last asked for a line
	failures int
}

// Event is what Outage says a Failed or Up should log.
type Event int

// Events.
const (
	None      Event = iota // nothing worth a line
	Lost                   // the first failure of an outage
	StillDown              // a summary: down for Down(), Failures() attempts
	Back                   // the first success after an outage
)

// Failed records a failed or lost connection at now.
func (o *Outage) Failed(now time.Time) Event {
	o.failures++
	if !o.down {
		o.down, o.since, o.logged, o.failures = true, now, now, 1
		return Lost
	}
	every := o.Every
	if every <= 0 {
		every = DefaultSummaryEvery
	}
	if now.Sub(o.logged) >= every {
		o.logged = now
		return StillDown
	}
	return None
}

// Up records a connection made at now: Back if it ends an outage. Down
// and Failures still describe that outage until the next Failed.
func (o *Outage) Up(now time.Time) Event {
	if !o.down {
		return None
	}
	o.down = false
	o.logged = now // Down() now measures the outage that ended
	return Back
}

// Down is how long the current outage has lasted at now, or how long the
// last one lasted once it ended.
func (o *Outage) Down(now time.Time) time.Duration {
	if o.since.IsZero() {
		return 0
	}
	if !o.down {
		return o.logged.Sub(o.since)
	}
	return now.Sub(o.since)
}

// Failures is how many failures the current (or last) outage counted.
func (o *Outage) Failures() int { return o.failures }
