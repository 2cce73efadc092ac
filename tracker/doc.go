// Package tracker is coopcast's control plane: for every channel it keeps
// the forest of distribution trees (internal/forest), tells peers whom to
// feed and whom to receive from, relays WebRTC signaling between peers it
// has paired, detects failures and repairs the trees. Video never passes
// through it.
//
// A Server is created with New from a Config whose zero fields are
// defaults, serves HTTP through Handler (the WebSocket signaling endpoint
// /ws, /healthz, /metrics and the JSON API under /api/v1), and runs its
// background work (heartbeat sweeps, the end of the restore window after a
// restart) in Run until its context ends. Close drops every connection; it
// is safe to call more than once.
//
//	srv, err := tracker.New(tracker.Config{PublishToken: "secret"})
//	go srv.Run(ctx)
//	http.ListenAndServe("127.0.0.1:8080", srv.Handler())
//
// The messages are documented in docs/PROTOCOL.md.
package tracker
