// Package cadence is the rule by which a peer judges a parent silent, so
// that a parent whose stripe stopped is replaced about a chunk interval
// after it stopped rather than at the tracker's heartbeat expiry.
//
// Silence is judged in the data plane, by the chunk cadence: a chunk whose
// first news (its manifest, by whichever tree or over HTTP) came more than
// the tree's slack ago, with nothing of it from this tree's parent, says
// the parent is behind. The slack is twice the lag the tree has shown
// lately (a deep tree, or one through a loaded relay, runs behind the
// others), and at least a quarter of a chunk interval or MinSlack. Besides
// that: a parent that sent nothing for the silence timeout while other
// trees deliver is silent; a link that never opened within LinkTimeout is
// stuck; and when no tree brought the next chunk's news for the slack
// past its expected time (or twice the news' usual lateness here, if
// more) and the origin, asked, has newer chunks, every parent that sent
// nothing is starved (every parent stopped at once: no tree's cadence can
// tell).
//
// The rule is pure: no I/O, no goroutines, no clock. Times are
// microseconds, the caller says what time it is and describes the stream
// and each tree; Judge returns per tree why its parent counts as silent,
// or None. The native peer (package peer) runs it, the browser peer a
// line-for-line twin (webclient/js/cadence.js) that the shared vectors in
// testdata/vectors/cadence.json keep honest.
//
//	r := cadence.New(cadence.Config{})
//	why = r.Judge(now, cadence.Stream{...}, trees, why[:0])
//	for i, w := range why { if w != cadence.None { complain about tree i's parent } }
package cadence
