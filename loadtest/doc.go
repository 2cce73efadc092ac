// Package loadtest runs flash-crowd scenarios against coopcast and
// measures them with the names DESIGN.md fixes (origin_egress_copies,
// offload_ratio, startup_ms, latency_ms, continuity, depth, repair_ms,
// relay_bytes).
//
// Mode "real" starts a tracker, an origin with a synthetic source and N
// native peers — real pion peers over loopback data channels — in this
// process, optionally killing and replacing peers (churn), and checks
// every rebuilt chunk byte for byte against the origin's.
//
//	res, err := loadtest.Run(ctx, loadtest.Config{Peers: 60, Duration: 30 * time.Second, Bitrate: 500_000})
//	json.NewEncoder(os.Stdout).Encode(res)
package loadtest
