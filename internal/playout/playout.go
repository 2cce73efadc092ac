package playout

import (
	"fmt"
	"time"
)

// Config sets the rule. Zero values are defaults.
type Config struct {
	// Delay is the playout buffer: a chunk is due this long after its cut
	// (plus the clock offset). Default 2 s.
	Delay time.Duration
	// Lead: playout may start at a chunk not yet rebuilt only while its
	// deadline is at least this far off, time enough for HTTP fallback
	// to bring it. Default 600 ms.
	Lead time.Duration
	// Window is how many chunks up to the newest the caller keeps; the
	// start rule looks no further back. Default 64.
	Window int
	// Interval is the chunk interval to assume until two manifests show
	// it. Zero: none; until then a chunk whose manifest never came is
	// never due, and the stream is never judged stopped.
	Interval time.Duration
	// StopAfter is how many chunk intervals past the time the next
	// manifest was expected (plus half an interval's grace for jitter)
	// the stream counts as stopped. Default 2.
	StopAfter int
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Delay < 0:
		return fmt.Errorf("playout: Delay must be ≥ 0, got %v", c.Delay)
	case c.Lead < 0:
		return fmt.Errorf("playout: Lead must be ≥ 0, got %v", c.Lead)
	case c.Window < 0:
		return fmt.Errorf("playout: Window must be ≥ 0, got %d", c.Window)
	case c.Interval < 0:
		return fmt.Errorf("playout: Interval must be ≥ 0, got %v", c.Interval)
	case c.StopAfter < 0:
		return fmt.Errorf("playout: StopAfter must be ≥ 0, got %d", c.StopAfter)
	}
	return nil
}

// Rule is the playout rule with its settings, in µs. It holds no state
// of its own: one Rule serves any number of States.
type Rule struct {
	delay, lead, interval int64
	window                uint32
	stopAfter             int64
}

// New returns the rule for cfg, defaults filled in (negative values
// count as zero; Validate reports them).
func New(cfg Config) Rule {
	r := Rule{delay: cfg.Delay.Microseconds(), lead: cfg.Lead.Microseconds(), interval: max(0, cfg.Interval.Microseconds()),
		window: uint32(max(0, cfg.Window)), stopAfter: int64(cfg.StopAfter)}
	if cfg.Delay <= 0 {
		r.delay = (2 * time.Second).Microseconds()
	}
	if cfg.Lead <= 0 {
		r.lead = (600 * time.Millisecond).Microseconds()
	}
	if r.window == 0 {
		r.window = 64
	}
	if r.stopAfter <= 0 {
		r.stopAfter = 2
	}
	return r
}

// Chunk is what the rule needs to know of one chunk the caller holds.
type Chunk struct {
	// Known: its signed manifest is in. Everything below needs it.
	Known bool
	// Keyframe and End are the manifest's flags.
	Keyframe, End bool
	// Done: rebuilt, at DoneAt (µs).
	Done bool
	// Time is the manifest's timestamp: when the origin cut it (µs).
	Time   int64
	DoneAt int64
}

// Window is how the rule looks at the chunks the caller holds: the zero
// Chunk for one it has nothing verified of.
type Window interface {
	Chunk(seq uint32) Chunk
}

// Op is what a Decision says.
type Op uint8

// The decisions.
const (
	// Start: playout starts at Seq.
	Start Op = iota + 1
	// Play: chunk Seq plays now; OnTime says it was rebuilt by its
	// deadline.
	Play
	// Miss: chunk Seq's deadline passed and it is not rebuilt (or its
	// manifest never came): skipped, counted missed.
	Miss
	// Drop: chunk Seq is rebuilt, but it follows a skip and is no
	// keyframe, so a decoder cannot use it: dropped, counted missed.
	Drop
	// End: chunk Seq ends the stream; playout is over.
	End
	// Stop: the stream has stopped at the origin: the next manifest is
	// overdue and the origin, asked, has nothing newer (or does not
	// answer); or no manifest came for StopAfter intervals (and half an
	// interval's grace) past the time the next was expected.
	Stop
	// Resume: a manifest came after a Stop.
	Resume
)

var opNames = [...]string{Start: "start", Play: "play", Miss: "miss", Drop: "drop", End: "end", Stop: "stop", Resume: "resume"}

func (o Op) String() string {
	if int(o) < len(opNames) && opNames[o] != "" {
		return opNames[o]
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Decision is one thing the rule decided, in order.
type Decision struct {
	Seq    uint32
	Op     Op
	OnTime bool
}

// StoppedReason is what a peer says, in words, while the rule reports
// the stream stopped.
const StoppedReason = "the stream has stopped at the origin"

// State is one viewer's playout state. The zero State is a viewer that
// knows nothing yet. It is kept small (48 bytes), what every call reads
// first: the simulator holds one per viewer, a million of them.
type State struct {
	next     uint32 // the next chunk to play, once started
	newest   uint32 // the newest manifest's seq
	flags    uint8
	played   uint32
	onTime   uint32
	missed   uint32
	offset   int64 // µs: smallest arrival − timestamp seen
	newestTS int64 // µs: the newest manifest's timestamp
	interval int64 // µs between cuts, from the two newest manifests; 0: not known
}

const (
	fHaveAny     uint8 = 1 << iota // a manifest is known: newest, newestTS, offset hold
	fStarted                       // next holds
	fNeedKey                       // a chunk was skipped: media resumes at a keyframe
	fStopped                       // the stream has stopped at the origin
	fEnded                         // the end of the stream was played
	fEndSeen                       // the newest manifest ends the stream
	fMedia                         // the stream is media: start and resume at keyframes
	fOriginQuiet                   // asked while the next manifest was overdue, the origin had nothing newer than newest
)

func (st *State) is(f uint8) bool { return st.flags&f != 0 }

func (st *State) set(f uint8, on bool) {
	if on {
		st.flags |= f
	} else {
		st.flags &^= f
	}
}

// SetMedia says whether the stream is media (an init segment came): a
// decoder then starts, and resumes after a skip, at a keyframe.
func (st *State) SetMedia(on bool) { st.set(fMedia, on) }

// Played, OnTime and Missed count chunks played, played by their
// deadline, and skipped or dropped since playout started.
func (st *State) Played() uint64 { return uint64(st.played) }

// OnTime counts chunks played that were rebuilt by their deadline.
func (st *State) OnTime() uint64 { return uint64(st.onTime) }

// Missed counts chunks skipped or dropped.
func (st *State) Missed() uint64 { return uint64(st.missed) }

// Continuity is chunks on time over chunks due; 1 before any is due.
func (st *State) Continuity() float64 {
	if due := uint64(st.played) + uint64(st.missed); due > 0 {
		return float64(st.onTime) / float64(due)
	}
	return 1
}

// Next is the next chunk to play, and whether playout has started.
func (st *State) Next() (uint32, bool) { return st.next, st.is(fStarted) }

// Newest is the newest chunk whose manifest is known, if any.
func (st *State) Newest() (uint32, bool) { return st.newest, st.is(fHaveAny) }

// Offset is the clock offset plus the best one-way delay seen (µs), if
// any manifest came.
func (st *State) Offset() (int64, bool) { return st.offset, st.is(fHaveAny) }

// Stopped reports whether the stream has stopped at the origin (see Stop).
func (st *State) Stopped() bool { return st.is(fStopped) }

// Ended reports whether the end of the stream was played.
func (st *State) Ended() bool { return st.is(fEnded) }

// NeedKeyframe reports whether playout waits for a keyframe after a skip.
func (st *State) NeedKeyframe() bool { return st.is(fNeedKey) }

// Interval is the chunk interval (µs) the rule uses now: measured, or the
// configured one; 0 when neither.
func (r *Rule) Interval(st *State) int64 {
	if st.interval > 0 {
		return st.interval
	}
	return r.interval
}

// Deadline is when a chunk cut at ts (µs) must be rebuilt to play on time.
func (r *Rule) Deadline(st *State, ts int64) int64 { return ts + st.offset + r.delay }

// Manifest is the event "chunk seq's manifest, timestamped ts, is known
// (verified) at now". It sets the newest chunk, the interval between
// cuts and the clock offset.
func (r *Rule) Manifest(st *State, now int64, seq uint32, ts int64, end bool) {
	if !st.is(fHaveAny) || int32(seq-st.newest) > 0 {
		if st.is(fHaveAny) && ts > st.newestTS {
			iv := (ts - st.newestTS) / int64(seq-st.newest)
			// An origin catching up after a stall cuts chunks back to
			// back: their spacing is no cadence, and deadlines
			// extrapolated from it would fly by in a gap (a hundred
			// thousand "missed" in seconds). A shorter interval is taken
			// a quarter at a time; a longer one at once.
			if st.interval > 0 {
				iv = max(iv, st.interval*3/4)
			}
			st.interval = iv
		}
		st.newest, st.newestTS = seq, ts
		st.set(fEndSeen, end)
		st.set(fOriginQuiet, false)
	}
	// The smallest arrival − timestamp seen estimates the clock offset
	// plus the best one-way delay: deadlines then hold across clock skew.
	if off := now - ts; !st.is(fHaveAny) || off < st.offset {
		st.offset = off
	}
	st.flags |= fHaveAny
}

// deadline is when chunk seq is due, and whether that is known: from its
// own timestamp, or extrapolated from the newest manifest's.
func (r *Rule) deadline(st *State, seq uint32, c *Chunk) (int64, bool) {
	if c.Known {
		return r.Deadline(st, c.Time), true
	}
	iv := r.Interval(st)
	if !st.is(fHaveAny) || iv == 0 || st.is(fEndSeen) && int32(seq-st.newest) > 0 {
		return 0, false // nothing to go by, or past the end
	}
	return r.Deadline(st, st.newestTS+int64(int32(seq-st.newest))*iv), true
}

// stale reports whether the stream has stopped at the origin: the origin
// said so (see Origin), or no manifest came for stopAfter intervals past
// the time the one after the newest was expected, and half an interval
// more: the offset is the best delay seen, and without that grace a
// stream that lost exactly stopAfter manifests would be called stopped
// whenever the next one came a little slower than the fastest ever did.
func (r *Rule) stale(st *State, now int64) bool {
	return st.is(fOriginQuiet) || r.lateBy(st, now, r.stopAfter)
}

// lateBy reports whether the manifest after the newest is more than n
// intervals and a half late: now is past the newest's cut time plus the
// offset plus (1+n) intervals and a half. False when nothing says when
// the next is due (no manifest, no interval) or none will come (the end).
func (r *Rule) lateBy(st *State, now int64, n int64) bool {
	iv := r.Interval(st)
	if !st.is(fHaveAny) || st.is(fEndSeen) || st.is(fEnded) || iv == 0 {
		return false
	}
	return now > st.newestTS+st.offset+(1+n)*iv+iv/2
}

// Overdue reports whether the manifest after the newest is half an
// interval late (the same grace for jitter as the stop): time to ask the
// origin for its newest chunk, and to tell the rule what it said
// (Origin). A dead origin is then seen about one and a half intervals
// after its last chunk instead of StopAfter intervals later.
func (r *Rule) Overdue(st *State, now int64) bool { return r.lateBy(st, now, 0) }

// Origin is the event "asked at now, the origin said its newest chunk is
// latest (ok), or has none or did not answer (!ok)". If it has nothing
// newer than the newest manifest known here while the next one is
// Overdue, the stream has stopped at the origin: the next Advance says
// Stop, and a newer manifest (Manifest) says Resume. If it has newer
// chunks, the gap is on the way here, not at the origin. The caller
// reports only answers it can trust: not a refusal or a rate limit, which
// say the origin is alive but not what it has.
func (r *Rule) Origin(st *State, now int64, latest uint32, ok bool) {
	if ok && (!st.is(fHaveAny) || int32(latest-st.newest) > 0) {
		st.set(fOriginQuiet, false)
		return
	}
	st.set(fOriginQuiet, r.Overdue(st, now))
}

// maxSteps bounds the chunks one Advance passes, so a long stop with a
// short interval costs several calls instead of one huge one.
const maxSteps = 4096

// Advance moves the playout position at now over what the window holds
// and appends the decisions to dst: chunks played in order, chunks whose
// deadline passed skipped (and counted missed), the end, and a stop or
// resume of the stream.
func (r *Rule) Advance(st *State, now int64, w Window, dst []Decision) []Decision {
	if stale := r.stale(st, now); stale != st.is(fStopped) {
		st.set(fStopped, stale)
		op := Resume
		if stale {
			op = Stop
		}
		dst = append(dst, Decision{Seq: st.newest, Op: op})
	}
	if st.is(fEnded) {
		return dst
	}
	if !st.is(fStarted) {
		first, ok := r.start(st, now, w)
		if !ok {
			return dst
		}
		st.next = first
		st.flags |= fStarted
		dst = append(dst, Decision{Seq: first, Op: Start})
	}
	for range maxSteps {
		seq := st.next
		c := w.Chunk(seq)
		switch {
		case c.Known && c.End:
			st.flags |= fEnded
			return append(dst, Decision{Seq: seq, Op: End})
		case c.Known && c.Done && st.is(fNeedKey) && !c.Keyframe:
			st.missed++
			dst = append(dst, Decision{Seq: seq, Op: Drop})
		case c.Known && c.Done:
			st.flags &^= fNeedKey
			onTime := c.DoneAt <= r.Deadline(st, c.Time)
			if onTime {
				st.onTime++
			}
			st.played++
			dst = append(dst, Decision{Seq: seq, Op: Play, OnTime: onTime})
		default:
			dl, ok := r.deadline(st, seq, &c)
			if !ok || now <= dl {
				return dst
			}
			st.missed++
			st.set(fNeedKey, st.is(fMedia))
			dst = append(dst, Decision{Seq: seq, Op: Miss})
		}
		st.next = seq + 1
	}
	return dst
}

// start picks where playout starts: the oldest chunk in the window that
// is rebuilt, or whose deadline is far enough off for HTTP fallback to
// bring it; for media, a keyframe (or the end of the stream).
func (r *Rule) start(st *State, now int64, w Window) (uint32, bool) {
	if !st.is(fHaveAny) {
		return 0, false
	}
	first, ok := uint32(0), false
	for i := uint32(0); i < r.window; i++ {
		seq := st.newest - i
		c := w.Chunk(seq)
		if !c.Known || (!c.Done && !c.End && now > r.Deadline(st, c.Time)-r.lead) {
			continue
		}
		if st.is(fMedia) && !c.Keyframe && !c.End {
			continue // a decoder starts at a keyframe (or the stream is over)
		}
		first, ok = seq, true
	}
	return first, ok
}

// Gaps appends to dst, oldest first and at most n, the chunks between
// the playout position and the newest whose manifests never came and
// whose deadlines have not passed: what a manifest poll asks the origin
// for besides what is newer than the newest.
func (r *Rule) Gaps(st *State, now int64, w Window, dst []uint32, n int) []uint32 {
	if !st.is(fStarted) || st.is(fEnded) {
		return dst
	}
	from := st.next
	if int32(st.newest-from) > int32(r.window) {
		from = st.newest - r.window // older ones are out of the caller's window
	}
	for seq, k := from, 0; int32(st.newest-seq) > 0 && k < n; seq++ {
		c := w.Chunk(seq)
		if c.Known {
			continue
		}
		if dl, ok := r.deadline(st, seq, &c); ok && now > dl {
			continue
		}
		dst = append(dst, seq)
		k++
	}
	return dst
}

// GapUrgent reports whether the oldest chunk Gaps lists has its deadline
// within the fallback lead (or no known deadline): the trees are not
// bringing its manifest in time, so a manifest poll should ask the origin
// now. Before that a late manifest may still come down a tree (a new
// parent sends its newest chunk first, and older ones follow).
func (r *Rule) GapUrgent(st *State, now int64, w Window) bool {
	var one [1]uint32
	g := r.Gaps(st, now, w, one[:0], 1)
	if len(g) == 0 {
		return false
	}
	c := w.Chunk(g[0])
	dl, ok := r.deadline(st, g[0], &c)
	return !ok || now >= dl-r.lead
}
