// Package tracker is coopcast's control plane: for every channel it keeps
// the forest of distribution trees (internal/forest), tells peers whom to
// feed and whom to receive from, relays WebRTC signaling between peers it
// has paired, detects failures and repairs the trees. Video never passes
// through it.
//
// A Server is created with New from a Config whose zero fields are
// defaults, serves HTTP through Handler (the WebSocket signaling endpoint
// /ws, /healthz, /metrics and the JSON API under /api/v1), and runs its
// background work (heartbeat sweeps, the end of restore windows, pruning)
// in Run until its context ends. Close closes every WebSocket with "going
// away", waits for every goroutine the server started and makes Run
// return; it is safe to call more than once.
//
//	srv, err := tracker.New(tracker.Config{PublishToken: "secret"})
//	go srv.Run(ctx)
//	http.ListenAndServe("127.0.0.1:8080", srv.Handler())
//
// Inside, each channel owns its forest under one mutex, its critical
// section: a client's message becomes a forest event there, and the
// event's decisions become messages queued to the clients concerned
// before the lock is released, so every client sees its assignments in
// the forest's order. Each connection has a bounded outbound queue and
// one writer goroutine; a client that lets its queue fill is cut off, and
// nobody else waits for it.
//
// The messages are documented in docs/PROTOCOL.md.
package tracker
