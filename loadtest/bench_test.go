package loadtest

import (
	"context"
	"flag"
	"testing"
	"time"
)

var benchPeers = flag.Int("loadtest.peers", 60, "peers in BenchmarkRealSwarm")

// BenchmarkRealSwarm runs one real-mode swarm per iteration and reports
// its measures; with -cpuprofile it shows where a swarm's CPU goes.
func BenchmarkRealSwarm(b *testing.B) {
	for i := 0; i < b.N; i++ {
		res, err := Run(context.Background(), Config{Peers: *benchPeers, Duration: 20 * time.Second, Bitrate: 400_000})
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(res.Continuity, "continuity")
		b.ReportMetric(res.OriginEgressCopies, "egress-copies")
		b.ReportMetric(res.CPUPerPeerPct, "cpu%/peer")
	}
}
