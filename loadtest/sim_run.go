package loadtest

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"syscall"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/peer"
)

// SimInfo is what a simulated run cost and which model it ran.
type SimInfo struct {
	Net    NetModel `json:"net"`
	Seed   uint64   `json:"seed"`
	Events uint64   `json:"events"`
	// SimulatedS is how far simulated time got (the duration, or less
	// when interrupted); HeapPeakMB the largest live heap sampled once a
	// simulated second.
	SimulatedS float64 `json:"simulated_s"`
	HeapPeakMB float64 `json:"heap_peak_mb"`
	// RelayDroppedBytes is what full relay queues dropped.
	RelayDroppedBytes uint64 `json:"relay_dropped_bytes"`
	// The tracker's time from an event's arrival to its decisions going
	// out (its queue plus its work): mean and worst, ms. A crowd faster
	// than the tracker shows here first.
	TrackerMeanMS float64 `json:"tracker_ms_mean"`
	TrackerMaxMS  float64 `json:"tracker_ms_max"`
}

// simTrace, if set, sees every event before it runs (tests).
var simTrace func(s *simulator, e event)

// runSim runs cfg (already defaulted and valid) in the simulator.
func runSim(ctx context.Context, cfg Config) (*Result, error) {
	s, err := newSimulator(cfg, NetModels[cfg.Net])
	if err != nil {
		return nil, err
	}
	start := time.Now()
	cpu0 := cpuTime()
	interrupted := s.run(ctx)
	wall := time.Since(start)
	res := s.collect()
	res.Interrupted = interrupted
	res.WallSeconds = round(wall.Seconds())
	res.CPUTotalPct = math.Round(100 * (cpuTime() - cpu0).Seconds() / math.Max(1e-9, wall.Seconds()))
	res.MaxRSSMB = maxRSSMB()
	res.Sim.HeapPeakMB = math.Round(float64(s.heapPeak)/(1<<20)*10) / 10
	return res, nil
}

// run runs events until the end of the scenario, or until ctx ends
// (checked between batches of events), and reports the latter.
func (s *simulator) run(ctx context.Context) (interrupted bool) {
	start := time.Now()
	s.push(event{at: 0, kind: evCut, c: 0})
	if len(s.arrivals) > 0 {
		// The origin publishes before the crowd arrives (300 ms), as in
		// real mode. Each arrival schedules the next.
		s.push(event{at: int64(300*time.Millisecond + s.arrivals[0]), kind: evStart, p: -1, c: 0})
	}
	if s.cfg.Churn > 0 {
		s.push(event{at: int64(100 * time.Millisecond), kind: evChurn})
	}
	s.push(event{at: int64(time.Second), kind: evSample})

	prog := newProgressLine(s.cfg, start)
	defer prog.end()
	for s.q.len() > 0 && s.q.peek() <= s.end {
		e := s.q.pop()
		s.now = e.at
		if e.kind == evStart && e.p < 0 {
			// The next viewer of the crowd.
			i := int(e.c)
			if i+1 < len(s.arrivals) {
				s.push(event{at: int64(300*time.Millisecond + s.arrivals[i+1]), kind: evStart, p: -1, c: int32(i + 1)})
			}
			e.p = s.addPeer()
		}
		if e.kind == evSample {
			s.heapPeak = max(s.heapPeak, heapInUse())
		}
		if simTrace != nil {
			simTrace(s, e)
		}
		s.step(&e)
		s.events++
		if s.events&0x3fff == 0 {
			if ctx.Err() != nil {
				interrupted = true
				break
			}
			if now := time.Now(); prog.due(now) {
				prog.show(now, float64(s.now)/float64(s.end), s.progress(now.Sub(start)))
			}
		}
	}
	if !interrupted {
		s.now = s.end
	}
	for _, p := range s.alive {
		s.advance(p)
	}
	s.heapPeak = max(s.heapPeak, heapInUse())
	return interrupted
}

// progress is a line of live figures.
func (s *simulator) progress(wall time.Duration) string {
	due := s.gPlayed + s.gMissed
	cont, offload := 1.0, 1.0
	if due > 0 {
		cont = float64(s.gOnTime) / float64(due)
		offload = 1 - float64(s.originRTC+s.originHTTP)/(float64(due)*float64(s.chunkLen))
	}
	return fmt.Sprintf("sim %5.1f/%.0f s  peers %d  offload %.4f  continuity %.4f  (wall %.0f s, %.1f M events)",
		float64(s.now)/1e9, s.cfg.Duration.Seconds(), len(s.alive), offload, cont, wall.Seconds(), float64(s.events)/1e6)
}

// collect turns the run into a Result with the same definitions real mode
// uses (see runner.collect).
func (s *simulator) collect() *Result {
	cfg := s.cfg
	res := &Result{Scenario: cfg.scenario(), Sim: &SimInfo{Net: s.model, Seed: cfg.Seed, Events: s.events,
		SimulatedS: round(float64(s.now) / 1e9), RelayDroppedBytes: s.dropped,
		TrackerMaxMS: round(float64(s.trackerWaitMax) / 1e6)}}
	if s.trackerEvents > 0 {
		res.Sim.TrackerMeanMS = round(float64(s.trackerWaitSum) / float64(s.trackerEvents) / 1e6)
	}
	var startups []float64
	var onTime, due, onTimeLived, dueLived, needed float64
	res.ContinuityMin = 1
	for p := 1; p < len(s.ps); p++ {
		if s.ps[p].state == psIdle {
			continue
		}
		res.PeersTotal++
		if s.ps[p].startup >= 0 {
			startups = append(startups, float64(s.ps[p].startup))
		}
		d := float64(s.ps[p].play.Played() + s.ps[p].play.Missed())
		ot := float64(s.ps[p].play.OnTime())
		due += d
		onTime += ot
		end := s.now
		if s.ps[p].state == psLeft || s.ps[p].state == psVanished {
			end = s.ps[p].leftAt
			res.Killed++
		}
		if end-s.ps[p].joinAt >= int64(10*time.Second) {
			dueLived += d
			onTimeLived += ot
			c := 1.0
			if d > 0 {
				c = ot / d
			}
			res.ContinuityMin = math.Min(res.ContinuityMin, c)
		}
		needed += d * float64(s.chunkLen)
	}
	res.Continuity = ratio(onTime, due)
	res.ContinuityLived = ratio(onTimeLived, dueLived)
	res.ContinuityMin = round(res.ContinuityMin)
	ps := peer.Percentiles(startups, 50, 95, 99)
	res.StartupP50, res.StartupP95, res.StartupP99 = ps[0], ps[1], ps[2]
	ls := s.lat.percentiles(50, 95, 99)
	res.LatencyP50, res.LatencyP95, res.LatencyP99 = ls[0], ls[1], ls[2]
	rs := peer.Percentiles(s.repairs, 50, 95, 99)
	res.RepairP50, res.RepairP95, res.RepairP99 = rs[0], rs[1], rs[2]
	res.Repairs = len(s.repairs)
	res.RelayBytes = s.relayBytes
	res.OriginRTCBytes, res.OriginHTTPBytes = s.originRTC, s.originHTTP
	res.StreamBytes = uint64(s.cuts) * uint64(s.chunkLen)
	egress := float64(s.originRTC + s.originHTTP)
	res.OriginEgressCopies = round(egress / math.Max(1, float64(res.StreamBytes)))
	if needed > 0 {
		res.OffloadRatio = round(1 - egress/needed)
	}
	res.ChunksGood = s.rebuilt
	res.Complaints, res.HTTPFetches = s.complaints, s.fetches
	res.Series = s.series
	res.StartupCDF, res.RepairCDF = cdf(startups), cdf(s.repairs)
	res.LatencyCDF = s.lat.cdf()
	res.DepthHist = forestDepths(s.f)
	res.DepthMax = maxDepths(res.DepthHist)
	return res
}

// forestDepths counts, per tree, the peers at each depth, as the
// tracker's forest snapshot gives them to real mode (peers on fallback
// left out).
func forestDepths(f *forest.Forest) [][]int {
	hist := make([][]int, f.Trees())
	f.Each(func(v forest.NodeView) bool {
		for t, e := range v.Trees {
			if e.Fallback || e.Pending || e.Depth <= 0 {
				continue
			}
			for len(hist[t]) <= e.Depth {
				hist[t] = append(hist[t], 0)
			}
			hist[t][e.Depth]++
		}
		return true
	})
	return hist
}

// latHist counts latencies in 10 µs bins up to 30 s: percentiles of tens
// of millions of samples without keeping them.
type latHist struct {
	bins []uint32
	n    uint64
}

const latBin = 10_000 // ns

func newLatHist() latHist { return latHist{bins: make([]uint32, 30*1e9/latBin)} }

func (h *latHist) add(ns int64) {
	i := int(max(ns, 0) / latBin)
	if i >= len(h.bins) {
		i = len(h.bins) - 1
	}
	h.bins[i]++
	h.n++
}

// percentiles returns the qs-th percentiles in ms by nearest rank, each
// the middle of its bin; 0s for none.
func (h *latHist) percentiles(qs ...float64) []float64 {
	out := make([]float64, len(qs))
	if h.n == 0 {
		return out
	}
	for j, q := range qs {
		rank := uint64(max(1, math.Ceil(q/100*float64(h.n))))
		var cum uint64
		for i, b := range h.bins {
			cum += uint64(b)
			if cum >= rank {
				out[j] = round((float64(i)*latBin + latBin/2) / 1e6)
				break
			}
		}
	}
	return out
}

// cdf is the percentiles 0, 1, …, 100 (nil for none).
func (h *latHist) cdf() []float64 {
	if h.n == 0 {
		return nil
	}
	qs := make([]float64, 101)
	for p := range qs {
		qs[p] = float64(p)
	}
	return h.percentiles(qs...)
}

func heapInUse() uint64 {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapInuse
}

// maxRSSMB is the process's peak resident memory so far, in MB.
func maxRSSMB() float64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return math.Round(float64(ru.Maxrss)/1024*10) / 10 // Linux: KiB
}
