package loadtest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"time"
)

// NetModel is what the simulator assumes about the network and the
// machines: the parameters of every delay it draws. docs/adr/0004 says
// where each default comes from. Durations drawn from a Dist are
// log-normal: half below Median, one in twenty above P95.
type NetModel struct {
	Name string `json:"name"`
	// Hop is a link's one-way delay, drawn once per link (per pair of
	// peers); Jitter an extra delay drawn per message (waiting for a
	// core, queues elsewhere).
	Hop    Dist `json:"hop"`
	Jitter Dist `json:"jitter"`
	// Relay is a relay's time from receiving a message to sending it on
	// (parse, verify, queue: waiting for a core in a busy process); the
	// origin's fan-out takes it too. A catch-up sent from memory when a
	// link opens does not.
	Relay Dist `json:"relay"`
	// A share of messages (StallShare) waits Stall longer: real mode on
	// loopback shows a tenth of its hops taking about 200 ms more, which
	// we take to be SCTP's delayed acknowledgement holding a sender whose
	// congestion window is full.
	StallShare float64 `json:"stall_share"`
	Stall      Dist    `json:"stall"`
	// Control is the one-way delay between a peer and the tracker, drawn
	// once per peer. TrackerService is the channel's critical section per
	// event (a join, leave or complaint and the messages its decisions
	// queue): the tracker takes one at a time, so a crowd queues.
	Control        Dist          `json:"control"`
	TrackerService time.Duration `json:"tracker_service"`
	// LinkSetup runs from both ends of a new link knowing of it to its data
	// channel being open: signaling through the tracker, ICE, DTLS, SCTP.
	LinkSetup Dist `json:"link_setup"`
	// HTTP is an origin fetch's time to the first byte; HTTPBps its
	// download rate.
	HTTP    Dist  `json:"http"`
	HTTPBps int64 `json:"http_bps"`
	// UplinkBps is every peer's uplink; 0: the upload it offers times
	// UplinkHeadroom. OriginBps is the origin's uplink.
	UplinkBps      int64   `json:"uplink_bps,omitempty"`
	UplinkHeadroom float64 `json:"uplink_headroom,omitempty"`
	OriginBps      int64   `json:"origin_bps"`
	// Loss is the chance that a message is lost on a link; it is sent
	// again after Retransmit, and given up after the data channel's
	// packet lifetime (1 s), as SCTP partial reliability does.
	Loss       float64       `json:"loss"`
	Retransmit time.Duration `json:"retransmit"`
}

// Dist is a log-normal distribution of durations. P95 ≤ Median means
// always Median.
type Dist struct {
	Median time.Duration `json:"median"`
	P95    time.Duration `json:"p95"`
}

func (d Dist) String() string {
	if d.P95 <= d.Median {
		return d.Median.String()
	}
	return fmt.Sprintf("%v (p95 %v)", d.Median, d.P95)
}

// sampler draws from a Dist by table: samplerSize quantiles, one picked
// at random. Far cheaper than exp(normal) per draw, which matters at a
// few draws per simulated message.
type sampler []int64

const samplerBits = 12

func (d Dist) sampler() sampler {
	if d.P95 <= d.Median {
		return sampler{int64(d.Median)}
	}
	sigma := math.Log(float64(d.P95)/float64(d.Median)) / 1.6449
	t := make(sampler, 1<<samplerBits)
	for i := range t {
		z := math.Sqrt2 * math.Erfinv(2*(float64(i)+0.5)/float64(len(t))-1)
		t[i] = int64(math.Min(float64(d.Median)*math.Exp(sigma*z), 4*float64(d.P95)))
	}
	return t
}

// draw returns one value in nanoseconds, at most 4 × P95.
func (t sampler) draw(r *rand.Rand) int64 {
	if len(t) == 1 {
		return t[0]
	}
	return t[r.Uint64()>>(64-samplerBits)]
}

// NetModels are the simulator's named models.
//
// "loopback" is calibrated against real mode on the build machine (2
// cores, every peer in one process over loopback): TestSimAgreesWithReal
// checks it. Bandwidth is not what limits a loopback swarm, CPU is: the
// uplinks are wide and the delays are what pion's goroutines wait for a
// core.
//
// "internet" is a guess at peers spread over a continent: tens of
// milliseconds a hop, a few hundred for a new link's handshakes, peers
// that offer half their uplink, a little loss. Nothing checks it against
// a real deployment yet.
var NetModels = map[string]NetModel{
	"loopback": {
		Name:           "loopback",
		Hop:            Dist{Median: time.Millisecond, P95: 3 * time.Millisecond},
		Jitter:         Dist{Median: time.Millisecond, P95: 5 * time.Millisecond},
		Relay:          Dist{Median: 7 * time.Millisecond, P95: 30 * time.Millisecond},
		StallShare:     0.08,
		Stall:          Dist{Median: 170 * time.Millisecond, P95: 220 * time.Millisecond},
		Control:        Dist{Median: 300 * time.Microsecond, P95: 2 * time.Millisecond},
		TrackerService: 10 * time.Microsecond,
		LinkSetup:      Dist{Median: 3 * time.Millisecond, P95: 40 * time.Millisecond},
		HTTP:           Dist{Median: 3 * time.Millisecond, P95: 20 * time.Millisecond},
		HTTPBps:        200_000_000,
		UplinkBps:      100_000_000,
		OriginBps:      1_000_000_000,
		Retransmit:     200 * time.Millisecond,
	},
	"internet": {
		Name:           "internet",
		Hop:            Dist{Median: 25 * time.Millisecond, P95: 80 * time.Millisecond},
		Jitter:         Dist{Median: time.Millisecond, P95: 5 * time.Millisecond},
		Relay:          Dist{Median: time.Millisecond, P95: 5 * time.Millisecond},
		StallShare:     0.02,
		Stall:          Dist{Median: 200 * time.Millisecond, P95: 300 * time.Millisecond},
		Control:        Dist{Median: 30 * time.Millisecond, P95: 100 * time.Millisecond},
		TrackerService: 10 * time.Microsecond,
		LinkSetup:      Dist{Median: 250 * time.Millisecond, P95: 700 * time.Millisecond},
		HTTP:           Dist{Median: 60 * time.Millisecond, P95: 200 * time.Millisecond},
		HTTPBps:        20_000_000,
		UplinkHeadroom: 2,
		OriginBps:      1_000_000_000,
		Loss:           0.005,
		Retransmit:     250 * time.Millisecond,
	},
}

// NetModelNames lists the models, sorted.
func NetModelNames() []string {
	out := make([]string, 0, len(NetModels))
	for n := range NetModels {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// describe is the model in a few lines for the summary.
func (m NetModel) describe() []string {
	up := "uplink " + bps(m.UplinkBps)
	if m.UplinkBps == 0 {
		up = fmt.Sprintf("uplink %.3g× the upload offered", m.UplinkHeadroom)
	}
	return []string{
		fmt.Sprintf("hop %v, relay %v, jitter %v", m.Hop, m.Relay, m.Jitter),
		fmt.Sprintf("%.0f%% of messages %v later, loss %.2g%%, %s", 100*m.StallShare, m.Stall, 100*m.Loss, up),
		fmt.Sprintf("link setup %v, tracker %v one way + %v an event", m.LinkSetup, m.Control, m.TrackerService),
		fmt.Sprintf("HTTP fetch %v + size at %s", m.HTTP, bps(m.HTTPBps)),
	}
}

func bps(v int64) string {
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%.3g Gbit/s", float64(v)/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%.3g Mbit/s", float64(v)/1e6)
	}
	return fmt.Sprintf("%.3g kbit/s", float64(v)/1e3)
}
