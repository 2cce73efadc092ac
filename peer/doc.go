// Package peer is the native coopcast peer: it joins a channel through
// the tracker, receives the stripes of every tree from its parents,
// verifies each message against the chunk's signed manifest before it
// uses or relays it, forwards it at once to its children in that tree,
// rebuilds each chunk from any k stripes (regenerating a stripe its own
// children lack), fetches what is still missing near the deadline from
// the origin over HTTP, and plays chunks out in order through a playout
// buffer with per-chunk deadlines.
//
//	p, _ := peer.New(peer.Config{TrackerURL: u, Channel: "demo", UploadKbps: 2000, Out: f})
//	err := p.Run(ctx)
//	rep := p.Report() // startup_ms, latency_ms percentiles, continuity, ...
package peer
