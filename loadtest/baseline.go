package loadtest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"sync"
	"time"

	"github.com/coopcast/coopcast/internal/wire"
	"github.com/coopcast/coopcast/origin"
	"github.com/coopcast/coopcast/peer"
)

// Baseline is what a plain origin does for the same viewers: each fetches
// every chunk straight from the origin over HTTP, as an HLS or DASH player
// would, and plays it if it arrived within the playout buffer.
type Baseline struct {
	Viewers            int     `json:"viewers"`
	OriginEgressCopies float64 `json:"origin_egress_copies"`
	OriginBytes        uint64  `json:"origin_bytes"`
	Continuity         float64 `json:"continuity"`
	StartupP95         float64 `json:"startup_ms_p95"`
	LatencyP50         float64 `json:"latency_ms_p50"`
	LatencyP99         float64 `json:"latency_ms_p99"`
	// Series is the origin's egress a second (Peers: the viewers).
	Series []Sample `json:"series,omitempty"`
}

// runBaseline has n viewers poll the origin's fallback at base for d, and
// measures. playout is the deadline after a chunk's origin timestamp.
func runBaseline(ctx context.Context, o *origin.Origin, base string, n int, d, poll, playout time.Duration) *Baseline {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	before := o.Stats()
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: n, MaxConnsPerHost: 0}}
	defer client.CloseIdleConnections()
	type tally struct {
		startup       float64
		lat           []float64
		onTime, total int
		first, last   uint32 // chunks fetched
	}
	tallies := make([]tally, n)
	var wg sync.WaitGroup
	var series []Sample
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		start, prev := time.Now(), before.HTTPBytes
		for {
			select {
			case <-ctx.Done():
				return
			case now := <-t.C:
				b := o.Stats().HTTPBytes
				series = append(series, Sample{T: math.Round(now.Sub(start).Seconds()*10) / 10, Peers: n,
					OriginMbps: round(float64(b-prev) * 8 / 1e6), Continuity: 1})
				prev = b
			}
		}
	}()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := &tallies[i]
			// Plain-HTTP viewers have no tracker: the origin vouches for them.
			tk := o.Ticket(uint64(i+1), d+time.Minute)
			t.startup = -1
			joined := time.Now()
			next, started := uint32(0), false
			tick := time.NewTicker(poll)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				var latest struct{ Seq uint32 }
				if b, err := get(ctx, client, base+"/latest", tk); err != nil || json.Unmarshal(b, &latest) != nil {
					continue
				}
				if !started {
					next, started = latest.Seq, true
				}
				for ; int32(latest.Seq-next) >= 0; next++ {
					raw, err := get(ctx, client, fmt.Sprintf("%s/manifest/%d", base, next), tk)
					if err != nil {
						break
					}
					m, err := wire.ParseManifest(raw)
					if err != nil || m.Flags&wire.FlagEnd != 0 {
						break
					}
					if _, err := get(ctx, client, fmt.Sprintf("%s/chunk/%d", base, next), tk); err != nil {
						break
					}
					now := time.Now()
					if t.total == 0 {
						t.first = next
					}
					t.last = next
					l := now.Sub(time.UnixMicro(m.Timestamp))
					t.lat = append(t.lat, float64(l.Microseconds())/1000)
					t.total++
					if l <= playout {
						t.onTime++
						if t.startup < 0 {
							t.startup = float64(now.Sub(joined).Microseconds()) / 1000
						}
					}
				}
			}
		}()
		// The same arrival spread as the swarm's viewers would be fairer,
		// but HTTP viewers cost nothing to start: they all come at once.
	}
	wg.Wait()
	after := o.Stats()
	res := &Baseline{Viewers: n, OriginBytes: after.HTTPBytes - before.HTTPBytes, Series: series}
	// Copies of the stream served: bytes over the bytes of the chunks the
	// viewers' window covered.
	var startups, lat []float64
	var onTime, total int
	first, last, any := uint32(0), uint32(0), false
	for _, t := range tallies {
		if t.total > 0 {
			if !any || int32(t.first-first) < 0 {
				first = t.first
			}
			if !any || int32(t.last-last) > 0 {
				last = t.last
			}
			any = true
		}
	}
	if any && after.Chunks > 0 {
		covered := float64(last-first+1) * float64(after.ChunkBytes) / float64(after.Chunks)
		res.OriginEgressCopies = round(float64(res.OriginBytes) / covered)
	}
	for _, t := range tallies {
		if t.startup >= 0 {
			startups = append(startups, t.startup)
		}
		lat = append(lat, t.lat...)
		onTime += t.onTime
		total += t.total
	}
	res.Continuity = ratio(float64(onTime), float64(total))
	res.StartupP95 = peer.Percentile(startups, 95)
	res.LatencyP50, res.LatencyP99 = peer.Percentile(lat, 50), peer.Percentile(lat, 99)
	if math.IsNaN(res.Continuity) {
		res.Continuity = 0
	}
	return res
}

func get(ctx context.Context, c *http.Client, url, ticket string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set(wire.TicketHeader, ticket)
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return b, nil
}
