// Package stack runs a whole coopcast server on one address: a tracker,
// an origin publishing one channel, and the HTTP server that carries the
// tracker's API, WebSocket, web client and the origin's HTTP fallback.
// The demo command, the load tester and the tests that need a live swarm
// all start it the same way and shut it down in the same order.
//
//	st, err := stack.Start(ctx, stack.Config{
//		Origin: origin.Config{Channel: "demo", Source: src, Bitrate: bps},
//	})
//	if err != nil { ... }
//	defer st.Close()
//	fmt.Println("join:", st.URL())
//
// Start fills in what ties the parts together (the origin's tracker and
// fallback URLs, the publish token both share, the logger) and returns
// once the listener is serving. The stack runs until its context ends,
// Close is called, or the origin fails; then it stops the origin first
// (so that it leaves the tracker while the tracker still listens), then
// the tracker (which says "going away" to every WebSocket), then the HTTP
// server. Close waits for all of it and may be called more than once.
package stack
