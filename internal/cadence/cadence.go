package cadence

import (
	"fmt"
	"time"
)

// Config sets the rule. Zero values are defaults.
type Config struct {
	// SilenceTimeout: a parent that sent nothing for this long (or two
	// chunk intervals, if longer) while other trees deliver is silent.
	// Default 1.5 s.
	SilenceTimeout time.Duration
	// LinkTimeout: a link to a new parent that has not opened this long
	// after it was named is stuck. Link setup is slow on a loaded machine
	// (DTLS handshakes), so it is well above the silence timeout.
	// Default 6 s.
	LinkTimeout time.Duration
	// MinSlack is the least a tree may run behind a chunk's first news
	// before its parent counts as behind. Default 300 ms.
	MinSlack time.Duration
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.SilenceTimeout < 0:
		return fmt.Errorf("cadence: SilenceTimeout must be ≥ 0, got %v", c.SilenceTimeout)
	case c.LinkTimeout < 0:
		return fmt.Errorf("cadence: LinkTimeout must be ≥ 0, got %v", c.LinkTimeout)
	case c.MinSlack < 0:
		return fmt.Errorf("cadence: MinSlack must be ≥ 0, got %v", c.MinSlack)
	}
	return nil
}

// Rule is the rule with its settings, in µs.
type Rule struct {
	silence, link, minSlack int64
}

// New returns the rule for cfg, defaults filled in for zero or negative
// values.
func New(cfg Config) Rule {
	r := Rule{silence: cfg.SilenceTimeout.Microseconds(), link: cfg.LinkTimeout.Microseconds(), minSlack: cfg.MinSlack.Microseconds()}
	if r.silence <= 0 {
		r.silence = (1500 * time.Millisecond).Microseconds()
	}
	if r.link <= 0 {
		r.link = (6 * time.Second).Microseconds()
	}
	if r.minSlack <= 0 {
		r.minSlack = (300 * time.Millisecond).Microseconds()
	}
	return r
}

// Stream is what the peer knows of the stream as a whole.
type Stream struct {
	// Interval is the chunk interval (µs); 0: not known yet.
	Interval int64
	// NewestAt is when the newest manifest came (µs); 0: none yet.
	NewestAt int64
	// OriginAhead: the next manifest is overdue, no tree brought it, and
	// the origin, asked just now, has newer chunks.
	OriginAhead bool
	// Due is when the manifest after the newest was expected here (µs):
	// its cut time plus the clock offset; 0: not known.
	Due int64
	// NewsLag is how late, past their expected time, manifests have come
	// here lately (µs; a decaying maximum): a peer deep in loaded trees
	// hears of every chunk late, and that is no parent's silence.
	NewsLag int64
}

// Tree is one tree as the peer sees it.
type Tree struct {
	// HasParent: the tracker named a parent (not HTTP fallback).
	HasParent bool
	// OpenSince is when the link to the parent opened (µs); 0: not open.
	OpenSince int64
	// LastRx is when the parent last delivered (µs), or when it became
	// the parent, or when it was last complained about: each gives it a
	// full slack again.
	LastRx int64
	// Lag is how far this tree has run behind a chunk's first news lately
	// (µs; a decaying maximum).
	Lag int64
	// Waiting is when the first news came (µs) of the oldest chunk newer
	// than any this tree brought (the end of stream aside: it carries no
	// stripes); 0: none.
	Waiting int64
	// AheadOfNews: the tree brought part of a chunk whose manifest has not
	// come yet.
	AheadOfNews bool
}

// Reason says why a parent counts as silent.
type Reason uint8

// The reasons.
const (
	// None: the parent is not silent.
	None Reason = iota
	// Behind: a chunk's news came more than the slack ago, with nothing
	// of it from the parent.
	Behind
	// Silent: nothing from the parent for the stall time while other
	// trees deliver.
	Silent
	// Stuck: the link to the parent never opened within LinkTimeout.
	Stuck
	// Starved: the origin has newer chunks, no tree brought their news
	// for the slack (or twice the news' usual lateness, if more) past
	// their expected time, and the parent sent nothing for the slack.
	Starved
)

var reasonNames = [...]string{None: "", Behind: "behind", Silent: "silent", Stuck: "stuck", Starved: "starved"}

func (r Reason) String() string {
	if int(r) < len(reasonNames) {
		return reasonNames[r]
	}
	return fmt.Sprintf("Reason(%d)", uint8(r))
}

// Slack is how long after a chunk's first news tree t may still have
// brought nothing of it: twice its recent lag, at least a quarter of an
// interval or MinSlack.
func (r Rule) Slack(s Stream, t Tree) int64 {
	return max(r.minSlack, s.Interval/4, 2*t.Lag)
}

// StallAfter is how long a tree may carry nothing before the peer stops
// counting on it (and, while others deliver, calls its parent silent):
// the silence timeout, or two intervals when chunks are longer (a tree is
// quiet between chunks).
func (r Rule) StallAfter(s Stream) int64 {
	return max(r.silence, 2*s.Interval)
}

// Judge appends to dst, per tree, why its parent counts as silent at now
// (None if it does not). A stopped stream is no parent's silence: Behind
// holds only while the news flows (the newest manifest came within three
// intervals), Silent only while some tree delivers.
func (r Rule) Judge(now int64, s Stream, trees []Tree, dst []Reason) []Reason {
	quiet := r.StallAfter(s)
	flowing := false
	for i := range trees {
		flowing = flowing || now-trees[i].LastRx < quiet/2
	}
	cadence := s.NewestAt != 0 && s.Interval > 0 && now-s.NewestAt < 3*s.Interval
	for i := range trees {
		t := &trees[i]
		if !t.HasParent {
			dst = append(dst, None)
			continue
		}
		open := t.OpenSince != 0
		slack := r.Slack(s, *t)
		// The link has been open for an interval and the parent sent
		// nothing for the slack: it had its chance at the chunk in hand.
		settled := open && now-t.OpenSince > s.Interval+slack && now-t.LastRx > slack
		switch {
		case cadence && settled && t.Waiting != 0 && now-t.Waiting > slack:
			dst = append(dst, Behind)
		case open && flowing && now-t.LastRx > quiet && now-t.OpenSince > quiet:
			dst = append(dst, Silent)
		case !open && now-t.LastRx > r.link:
			dst = append(dst, Stuck)
		case s.OriginAhead && s.Due != 0 && now-s.Due > max(slack, 2*s.NewsLag) && settled && !t.AheadOfNews:
			dst = append(dst, Starved)
		default:
			dst = append(dst, None)
		}
	}
	return dst
}
