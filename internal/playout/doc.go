// Package playout is the playout rule every coopcast peer runs: which
// chunk plays next, which are skipped and counted missed, where playout
// starts, and whether the stream has stopped at the origin.
//
// The rule is pure: no I/O, no goroutines, no clock. Times are
// microseconds since the Unix epoch, the unit of a manifest's timestamp,
// and the caller says what time it is. A caller keeps one Rule (the
// settings) and one State per viewer, feeds it events — a manifest is
// known (Manifest), and, through the Window it hands to Advance, which
// chunks are rebuilt and when — and gets back Decisions: play chunk n,
// chunk n missed, the stream ended, the stream stopped or resumed. The
// native peer (package peer) and the load-test simulator run this very
// code, the browser peer a line-for-line twin (webclient/js/playout.js)
// that the shared vectors in testdata/vectors/playout.json keep honest.
//
// A chunk is due by the wall clock: its cut time (its manifest's
// timestamp, or for a chunk whose manifest never came, the newest
// manifest's timestamp plus the chunk interval per chunk since) plus the
// clock offset (the smallest arrival − timestamp seen) plus the playout
// delay. Once that deadline passed the chunk is skipped, and so is every
// missing chunk after it whose deadline passed too: playout always moves
// on to the oldest chunk that can still play. After a skip, media resumes
// at the next keyframe. When the next manifest is half an interval
// overdue (Overdue), the caller asks the origin for its newest chunk and
// tells the rule what it said (Origin): nothing newer, or no answer, and
// the stream has stopped at the origin, about one and a half intervals
// after its last chunk. Without an answer, the stream counts as stopped
// when no newer manifest came for StopAfter intervals (and the half
// interval's grace) past the time the next was expected. Either way the
// chunks that never come keep counting as missed.
//
//	r := playout.New(playout.Config{Delay: 2 * time.Second})
//	var st playout.State
//	r.Manifest(&st, now, seq, timestamp, false) // for every verified manifest
//	ds = r.Advance(&st, now, window, ds[:0])    // on a timer and on every rebuild
//	if r.Overdue(&st, now) { ask the origin; r.Origin(&st, now, latest, ok) }
package playout
