package peer

import (
	"math"
	"slices"
	"time"

	"github.com/coopcast/coopcast/internal/playout"
	"github.com/coopcast/coopcast/internal/swarm"
)

type swarmTree = swarm.TreeState

// stats are the peer's counters, guarded by Peer.mu; chunks played,
// on time and missed are the playout rule's (Peer.play).
type stats struct {
	startup         time.Duration
	latency         []float64 // ms per rebuilt chunk
	repairs         []float64 // ms from a parent's replacement to its first data
	rebuilt         uint64
	bytesFromOrigin uint64
	bytesFromPeers  uint64
	badMessages     uint64
	unasked         uint64 // data from neighbours that do not feed us that tree
	evidence        uint64 // corrupt-data complaints sent, with evidence
	floodReports    uint64 // neighbours reported for flooding us
	regenerated     uint64
	httpFetches     uint64
	complaints      uint64
}

// Report is a peer's measures, named as in DESIGN.md.
type Report struct {
	PeerID          uint64  `json:"peer_id"`
	StartupMS       float64 `json:"startup_ms"`
	LatencyP50      float64 `json:"latency_ms_p50"`
	LatencyP95      float64 `json:"latency_ms_p95"`
	LatencyP99      float64 `json:"latency_ms_p99"`
	Continuity      float64 `json:"continuity"`
	ChunksPlayed    uint64  `json:"chunks_played"`
	ChunksMissed    uint64  `json:"chunks_missed"`
	ChunksRebuilt   uint64  `json:"chunks_rebuilt"`
	BytesFromOrigin uint64  `json:"bytes_from_origin"`
	BytesFromPeers  uint64  `json:"bytes_from_peers"`
	RelayBytes      uint64  `json:"relay_bytes"`
	RelayDropped    uint64  `json:"relay_dropped_bytes"`
	Children        int     `json:"children"`
	BadMessages     uint64  `json:"bad_messages"`
	// Unasked counts messages dropped because their sender does not feed
	// this peer the tree they belong to.
	Unasked uint64 `json:"unasked_messages"`
	// Evidence counts the neighbours shown to the tracker with evidence
	// of bad data; FloodReports those reported for flooding unasked data.
	Evidence     uint64 `json:"evidence_complaints"`
	FloodReports uint64 `json:"flood_reports"`
	Regenerated  uint64 `json:"regenerated_shards"`
	HTTPFetches  uint64 `json:"http_fetches"`
	Complaints   uint64 `json:"complaints"`
	// StreamStopped: no manifest came for two chunk intervals (and half
	// an interval's grace) past the time the next was due, so the stream
	// has stopped at the origin; the chunks that do not come count as
	// missed. Stream says so in words (playout.StoppedReason), or that the
	// stream ended.
	StreamStopped bool   `json:"stream_stopped"`
	Stream        string `json:"stream,omitempty"`
	// RepairMS lists, per parent replacement, ms until the new parent's
	// first data.
	RepairMS []float64 `json:"repair_ms,omitempty"`
	// Latencies are the per-chunk latencies in ms, for aggregation.
	Latencies []float64 `json:"-"`
	Parents   []uint64  `json:"parents"`
	Fallback  []bool    `json:"fallback"`
}

// Report returns the peer's measures so far.
func (p *Peer) Report() Report {
	sent, dropped, children := p.member.RelayStats()
	trees := p.member.Trees()
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.st
	r := Report{
		PeerID: uint64(p.member.ID()), ChunksPlayed: p.play.Played(), ChunksMissed: p.play.Missed(), ChunksRebuilt: s.rebuilt,
		BytesFromOrigin: s.bytesFromOrigin, BytesFromPeers: s.bytesFromPeers, RelayBytes: sent, RelayDropped: dropped,
		Children: children, BadMessages: s.badMessages, Regenerated: s.regenerated, HTTPFetches: s.httpFetches, Complaints: s.complaints,
		Unasked: s.unasked, Evidence: s.evidence, FloodReports: s.floodReports, StartupMS: ms(s.startup), Continuity: p.play.Continuity(), StreamStopped: p.play.Stopped(),
	}
	switch {
	case p.play.Stopped():
		r.Stream = playout.StoppedReason
	case p.play.Ended():
		r.Stream = "the stream ended"
	}
	if r.ChunksPlayed == 0 {
		r.StartupMS = -1
	}
	r.RepairMS = slices.Clone(s.repairs)
	r.Latencies = slices.Clone(s.latency)
	r.LatencyP50, r.LatencyP95, r.LatencyP99 = Percentile(s.latency, 50), Percentile(s.latency, 95), Percentile(s.latency, 99)
	for _, t := range trees {
		r.Parents = append(r.Parents, uint64(t.Parent))
		r.Fallback = append(r.Fallback, t.Fallback)
	}
	return r
}

func ms(d time.Duration) float64 { return math.Round(float64(d.Microseconds())/10) / 100 }

// Percentile returns the q-th percentile (0–100) of xs by nearest rank; 0
// for none.
func Percentile(xs []float64, q float64) float64 {
	return Percentiles(xs, q)[0]
}

// Percentiles returns the qs-th percentiles of xs, sorting xs once; 0s
// for none.
func Percentiles(xs []float64, qs ...float64) []float64 {
	out := make([]float64, len(qs))
	if len(xs) == 0 {
		return out
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	for j, q := range qs {
		i := int(math.Ceil(q/100*float64(len(s)))) - 1
		out[j] = s[max(0, min(i, len(s)-1))]
	}
	return out
}
