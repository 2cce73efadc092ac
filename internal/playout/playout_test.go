package playout

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// The scenarios below drive the rule through scripted events. Each
// advance step says, by hand, what the rule must decide and the state it
// must leave; TestRule checks that, and TestPlayoutVectors writes what the
// rule does in the same scenarios to testdata/vectors/playout.json for the
// JavaScript twin.

// base is the scenarios' epoch (µs), a realistic Unix time: the JS twin
// must get the same answers with Numbers of this size.
const base int64 = 1_764_000_000_000_000

// at is base plus ms milliseconds.
func at(ms float64) int64 { return base + int64(ms*1000) }

const sec = 1000.0 // ms

type step struct {
	at int64
	// One of these events:
	manifest *manifestEv
	rebuilt  *uint32
	advance  bool
	gaps     int // > 0: ask for at most this many gaps
	origin   *originEv
	// What the rule must decide (advance: "start 5; play 5; miss 6 …",
	// gaps: "3 4", and " !" when GapUrgent; origin: "overdue" or "")
	// and, for advance, the state it leaves ("" skips).
	want, state string
}

// originEv is the event: the origin, asked, said its newest chunk is
// latest (ok), or had none or did not answer (!ok).
type originEv struct {
	latest uint32
	ok     bool
}

type manifestEv struct {
	seq           uint32
	ts            int64
	keyframe, end bool
}

type scenario struct {
	name  string
	cfg   Config
	media bool
	steps []step
}

// man is the event: chunk seq's manifest, cut at cutMS, arrives at arriveMS.
func man(arriveMS float64, seq uint32, cutMS float64, flags ...string) step {
	m := &manifestEv{seq: seq, ts: at(cutMS)}
	for _, f := range flags {
		switch f {
		case "key":
			m.keyframe = true
		case "end":
			m.end = true
		}
	}
	return step{at: at(arriveMS), manifest: m}
}

func done(ms float64, seq uint32) step { return step{at: at(ms), rebuilt: &seq} }

func adv(ms float64, want, state string) step {
	return step{at: at(ms), advance: true, want: want, state: state}
}

func gaps(ms float64, n int, want string) step { return step{at: at(ms), gaps: n, want: want} }

// ask is the caller checking Overdue at ms (want: "overdue" or "") and
// then telling the rule what the origin said: its newest is latest (ok),
// or nothing (!ok).
func ask(ms float64, latest uint32, ok bool, want string) step {
	return step{at: at(ms), origin: &originEv{latest: latest, ok: ok}, want: want}
}

// Every scenario: 1 s chunks, 2 s playout delay, 600 ms lead; chunk n is
// cut at n s and its manifest arrives 100 ms later (the offset), so its
// deadline is n s + 2.1 s.
var defaults = Config{Delay: 2 * time.Second, Lead: 600 * time.Millisecond, Window: 64, StopAfter: 2}

var scenarios = []scenario{
	{
		name: "start at the oldest chunk that can still play",
		cfg:  defaults,
		steps: []step{
			man(5*sec+100, 5, 5*sec), man(6*sec+100, 6, 6*sec), man(7*sec+100, 7, 7*sec),
			// 5 is not rebuilt and within the lead of its deadline (7.1 s):
			// 6 is the oldest that can still come in time.
			adv(7*sec+100, "start 6", "next=6"),
			done(7*sec+200, 6),
			adv(7*sec+200, "play 6", "next=7 played=1 ontime=1"),
		},
	},
	{
		name: "start at a rebuilt chunk, however close its deadline",
		cfg:  defaults,
		steps: []step{
			man(5*sec+100, 5, 5*sec), man(6*sec+100, 6, 6*sec), done(6*sec+900, 5),
			adv(7*sec, "start 5; play 5", "next=6 played=1 ontime=1"),
		},
	},
	{
		name:  "media starts at a keyframe",
		cfg:   defaults,
		media: true,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec, "key"), done(2*sec+150, 2),
			man(3*sec+100, 3, 3*sec),
			adv(3*sec+100, "start 2; play 2", "next=3 played=1 ontime=1"),
		},
	},
	{
		name: "no manifest, no start",
		cfg:  defaults,
		steps: []step{
			adv(1*sec, "", "next=0"),
		},
	},
	{
		name: "two consecutive missing manifests are skipped by their deadlines and playout goes on",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			adv(1*sec+150, "start 1; play 1", "next=2 played=1 ontime=1"),
			man(2*sec+100, 2, 2*sec), done(2*sec+150, 2),
			adv(2*sec+150, "play 2", "next=3 played=2 ontime=2"),
			// The manifests of 3 and 4 never come; 5's does, and 5 is rebuilt.
			man(5*sec+100, 5, 5*sec),
			adv(5*sec+100, "", "next=3 played=2 ontime=2"),
			gaps(5*sec+100, 8, "3 4 !"), // 3 is due now: ask the origin
			// 3 is due at 5.1 s by the wall clock, manifest or not: skipped
			// at once after.
			adv(5*sec+101, "miss 3", "next=4 played=2 ontime=2 missed=1"),
			gaps(5*sec+101, 8, "4"), // 4 is due at 6.1 s: not urgent before 5.5 s
			gaps(5*sec+500, 8, "4 !"),
			done(5*sec+150, 5),
			adv(5*sec+150, "", "next=4 played=2 ontime=2 missed=1"),
			// 4 at 6.1 s; then 5, rebuilt long ago, plays on time.
			adv(6*sec+101, "miss 4; play 5", "next=6 played=3 ontime=3 missed=2"),
			gaps(6*sec+101, 8, ""),
			man(6*sec+100, 6, 6*sec), done(6*sec+200, 6),
			adv(6*sec+200, "play 6", "next=7 played=4 ontime=4 missed=2"),
		},
	},
	{
		name: "two lost manifests and a third slower than the fastest are no stop",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec), done(2*sec+150, 2),
			adv(2*sec+150, "start 1; play 1; play 2", "next=3 played=2 ontime=2"),
			adv(5*sec+500, "miss 3", "next=4 played=2 ontime=2 missed=1"),
			// 5's manifest comes 400 ms slower than the fastest did, within
			// the grace: the stream never counted as stopped.
			man(5*sec+500, 5, 5*sec), done(5*sec+550, 5),
			adv(6*sec+101, "miss 4; play 5", "next=6 played=3 ontime=3 missed=2"),
		},
	},
	{
		name: "a missing chunk with a known manifest is skipped at its deadline",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec),
			man(3*sec+100, 3, 3*sec), done(3*sec+150, 3),
			adv(3*sec+150, "start 1; play 1", "next=2 played=1 ontime=1"),
			adv(4*sec+100, "", "next=2 played=1 ontime=1"),
			adv(4*sec+101, "miss 2; play 3", "next=4 played=2 ontime=2 missed=1"),
		},
	},
	{
		name: "a chunk rebuilt after its deadline but before the next look plays late",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec),
			adv(1*sec+100, "start 1", "next=1"),
			done(3*sec+150, 1),
			adv(3*sec+150, "play 1 late", "next=2 played=1"),
		},
	},
	{
		name:  "after a gap media resumes at the next keyframe",
		cfg:   defaults,
		media: true,
		steps: []step{
			man(1*sec+100, 1, 1*sec, "key"), done(1*sec+150, 1),
			adv(1*sec+150, "start 1; play 1", "next=2 played=1 ontime=1"),
			man(2*sec+100, 2, 2*sec),
			man(3*sec+100, 3, 3*sec), done(3*sec+150, 3),
			man(4*sec+100, 4, 4*sec, "key"),
			adv(4*sec+100, "", "next=2 played=1 ontime=1"),
			done(4*sec+150, 4),
			// 2 never rebuilt: missed at 4.1 s; 3 is no keyframe: dropped.
			adv(4*sec+200, "miss 2; drop 3; play 4", "next=5 played=2 ontime=2 missed=2"),
		},
	},
	{
		name:  "the keyframe wait survives missing manifests",
		cfg:   defaults,
		media: true,
		steps: []step{
			man(1*sec+100, 1, 1*sec, "key"), done(1*sec+150, 1),
			adv(1*sec+150, "start 1; play 1", "next=2 played=1 ontime=1"),
			man(4*sec+100, 4, 4*sec), man(5*sec+100, 5, 5*sec, "key"),
			adv(5*sec+101, "miss 2; miss 3", "next=4 played=1 ontime=1 missed=2 needkey"),
			done(5*sec+150, 4), done(5*sec+150, 5),
			adv(5*sec+200, "drop 4; play 5", "next=6 played=2 ontime=2 missed=3"),
		},
	},
	{
		name: "a dead origin: stopped two intervals after the next manifest was due, and the missing chunks count",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec), done(2*sec+150, 2),
			man(3*sec+100, 3, 3*sec), done(3*sec+150, 3),
			adv(3*sec+150, "start 1; play 1; play 2; play 3", "next=4 played=3 ontime=3"),
			// The origin dies after cutting 3. 4 was expected at 4.1 s and
			// is due at 6.1 s; two intervals and the half-interval grace
			// past 4.1 s, at 6.6 s, the stream has stopped.
			adv(6*sec+101, "miss 4", "next=5 played=3 ontime=3 missed=1"),
			adv(6*sec+600, "", "next=5 played=3 ontime=3 missed=1"),
			adv(6*sec+601, "stop 3", "next=5 played=3 ontime=3 missed=1 stopped"),
			adv(9*sec+101, "miss 5; miss 6; miss 7", "next=8 played=3 ontime=3 missed=4 stopped"),
		},
	},
	{
		name: "a dead origin, asked: stopped an interval and a half after its last chunk",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec), done(2*sec+150, 2),
			man(3*sec+100, 3, 3*sec), done(3*sec+150, 3),
			adv(3*sec+150, "start 1; play 1; play 2; play 3", "next=4 played=3 ontime=3"),
			// 4 was expected at 4.1 s; half an interval later it is
			// overdue, and an origin that does not answer then has
			// stopped. Asked a moment before, its silence says nothing.
			ask(4*sec+600, 0, false, ""),
			adv(4*sec+600, "", "next=4 played=3 ontime=3"),
			ask(4*sec+601, 0, false, "overdue"),
			adv(4*sec+601, "stop 3", "next=4 played=3 ontime=3 stopped"),
			adv(6*sec+101, "miss 4", "next=5 played=3 ontime=3 missed=1 stopped"),
			// Back, numbering on: resumed (6 is not due until 8.1 s).
			man(7*sec+100, 7, 7*sec), done(7*sec+150, 7),
			adv(7*sec+150, "resume 7; miss 5", "next=6 played=3 ontime=3 missed=2"),
		},
	},
	{
		name: "an origin alive with nothing newer (its source stalled): stopped, and resumed by the next manifest",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec), done(2*sec+150, 2),
			adv(2*sec+150, "start 1; play 1; play 2", "next=3 played=2 ontime=2"),
			ask(3*sec+601, 2, true, "overdue"),
			adv(3*sec+601, "stop 2", "next=3 played=2 ontime=2 stopped"),
			man(3*sec+700, 3, 3*sec+600), done(3*sec+750, 3),
			adv(3*sec+750, "resume 3; play 3", "next=4 played=3 ontime=3"),
		},
	},
	{
		name: "an origin with newer chunks than arrived: the gap is on the way, not a stop",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec), done(2*sec+150, 2),
			adv(2*sec+150, "start 1; play 1; play 2", "next=3 played=2 ontime=2"),
			ask(3*sec+601, 3, true, "overdue"),
			adv(3*sec+601, "", "next=3 played=2 ontime=2"),
			// It had 3, which never arrives, nor anything after: the
			// stream is stopped by the time rule alone.
			adv(5*sec+600, "miss 3", "next=4 played=2 ontime=2 missed=1"),
			adv(5*sec+601, "stop 2", "next=4 played=2 ontime=2 missed=1 stopped"),
		},
	},
	{
		name: "an origin catching up after a stall: chunks cut back to back shrink the interval a quarter at a time",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec), done(2*sec+150, 2),
			adv(2*sec+150, "start 1; play 1; play 2", "next=3 played=2 ontime=2"),
			// Stalled for 3 s, it cuts 3, 4 and 5 a millisecond apart.
			man(5*sec+100, 3, 5*sec), man(5*sec+101, 4, 5*sec+1), man(5*sec+102, 5, 5*sec+2),
			done(5*sec+150, 3), done(5*sec+150, 4), done(5*sec+150, 5),
			adv(5*sec+150, "play 3; play 4; play 5", "next=6 played=5 ontime=5"),
			// The interval went 3 s (the stall), then 2.25 s and 1.6875 s,
			// not 1 ms: in the silence after, 6 is due at 8.79 s and 7 at
			// 10.48 s. With 1 ms, 10 s would have counted thousands missed.
			adv(10*sec, "miss 6", "next=7 played=5 ontime=5 missed=1"),
			adv(12*sec, "stop 5; miss 7", "next=8 played=5 ontime=5 missed=2 stopped"),
		},
	},
	{
		name:  "a stream that comes back resumes at its next keyframe",
		cfg:   defaults,
		media: true,
		steps: []step{
			man(1*sec+100, 1, 1*sec, "key"), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec), done(2*sec+150, 2),
			adv(2*sec+150, "start 1; play 1; play 2", "next=3 played=2 ontime=2"),
			adv(5*sec+101, "miss 3", "next=4 played=2 ontime=2 missed=1 needkey"),
			adv(5*sec+601, "stop 2", "next=4 played=2 ontime=2 missed=1 needkey stopped"),
			// The origin is back at 7 s (same numbering); 7 is a keyframe.
			man(7*sec+100, 7, 7*sec), done(7*sec+150, 7),
			man(8*sec+100, 8, 8*sec, "key"), done(8*sec+150, 8),
			adv(8*sec+150, "resume 8; miss 4; miss 5; miss 6; drop 7; play 8", "next=9 played=3 ontime=3 missed=5"),
		},
	},
	{
		name: "one manifest and silence: stopped only with an interval to go by",
		cfg:  Config{Delay: 2 * time.Second, Interval: time.Second},
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			adv(1*sec+150, "start 1; play 1", "next=2 played=1 ontime=1"),
			adv(4*sec+101, "miss 2", "next=3 played=1 ontime=1 missed=1"),
			adv(4*sec+601, "stop 1", "next=3 played=1 ontime=1 missed=1 stopped"),
		},
	},
	{
		name: "one manifest and silence, no interval: nothing to judge by",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			adv(1*sec+150, "start 1; play 1", "next=2 played=1 ontime=1"),
			adv(60*sec, "", "next=2 played=1 ontime=1"),
		},
	},
	{
		name: "end of stream: playout ends, and the silence after is no stop",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			man(2*sec+100, 2, 2*sec), done(2*sec+150, 2),
			man(2*sec+300, 3, 2*sec+200, "end"),
			adv(2*sec+300, "start 1; play 1; play 2; end 3", "next=3 played=2 ontime=2 ended"),
			adv(60*sec, "", "next=3 played=2 ontime=2 ended"),
		},
	},
	{
		name: "end of stream with chunks still missing: they are skipped first",
		cfg:  defaults,
		steps: []step{
			man(1*sec+100, 1, 1*sec), done(1*sec+150, 1),
			adv(1*sec+150, "start 1; play 1", "next=2 played=1 ontime=1"),
			man(2*sec+100, 2, 2*sec),
			man(2*sec+300, 3, 2*sec+200, "end"),
			adv(3*sec, "", "next=2 played=1 ontime=1"),
			adv(30*sec, "miss 2; end 3", "next=3 played=1 ontime=1 missed=1 ended"),
		},
	},
	{
		name:  "a viewer who joins after the end",
		cfg:   defaults,
		media: true,
		steps: []step{
			man(9*sec+100, 9, 9*sec, "end"),
			adv(9*sec+100, "start 9; end 9", "next=9 ended"),
		},
	},
}

// world is a scenario's chunk table: the caller's side of the Window.
type world map[uint32]*Chunk

func (w world) Chunk(seq uint32) Chunk {
	if c := w[seq]; c != nil {
		return *c
	}
	return Chunk{}
}

// result is what the rule decided at one advance or gaps step.
type result struct {
	decisions []Decision
	gaps      []uint32
	urgent    bool
	overdue   bool
	st        State
}

// play runs a scenario and returns, per step, what the rule decided.
func play(sc scenario) []result {
	r := New(sc.cfg)
	var st State
	st.SetMedia(sc.media)
	w := world{}
	out := make([]result, len(sc.steps))
	for i, s := range sc.steps {
		switch {
		case s.manifest != nil:
			m := s.manifest
			w[m.seq] = &Chunk{Known: true, Time: m.ts, Keyframe: m.keyframe, End: m.end}
			r.Manifest(&st, s.at, m.seq, m.ts, m.end)
		case s.rebuilt != nil:
			c := w[*s.rebuilt]
			c.Done, c.DoneAt = true, s.at
		case s.advance:
			out[i].decisions = r.Advance(&st, s.at, w, []Decision{})
		case s.gaps > 0:
			out[i].gaps = r.Gaps(&st, s.at, w, []uint32{}, s.gaps)
			out[i].urgent = r.GapUrgent(&st, s.at, w)
		case s.origin != nil:
			out[i].overdue = r.Overdue(&st, s.at)
			r.Origin(&st, s.at, s.origin.latest, s.origin.ok)
		}
		out[i].st = st
	}
	return out
}

func formatDecisions(ds []Decision) string {
	var b []string
	for _, d := range ds {
		s := fmt.Sprintf("%v %d", d.Op, d.Seq)
		if d.Op == Play && !d.OnTime {
			s += " late"
		}
		b = append(b, s)
	}
	return strings.Join(b, "; ")
}

func formatGaps(gs []uint32) string {
	var b []string
	for _, g := range gs {
		b = append(b, fmt.Sprint(g))
	}
	return strings.Join(b, " ")
}

func formatState(st *State) string {
	next, _ := st.Next()
	s := fmt.Sprintf("next=%d", next)
	for _, f := range []struct {
		name string
		n    uint64
	}{{"played", st.Played()}, {"ontime", st.OnTime()}, {"missed", st.Missed()}} {
		if f.n > 0 {
			s += fmt.Sprintf(" %s=%d", f.name, f.n)
		}
	}
	for _, f := range []struct {
		name string
		on   bool
	}{{"needkey", st.NeedKeyframe()}, {"stopped", st.Stopped()}, {"ended", st.Ended()}} {
		if f.on {
			s += " " + f.name
		}
	}
	return s
}

func TestRule(t *testing.T) {
	for _, sc := range scenarios {
		t.Run(sc.name, func(t *testing.T) {
			for i, res := range play(sc) {
				s := sc.steps[i]
				switch {
				case s.advance:
					if got := formatDecisions(res.decisions); got != s.want {
						t.Errorf("step %d, advance at +%d ms: decided %q, want %q", i, (s.at-base)/1000, got, s.want)
					}
					if got := formatState(&res.st); s.state != "" && got != s.state {
						t.Errorf("step %d, advance at +%d ms: state %q, want %q", i, (s.at-base)/1000, got, s.state)
					}
				case s.gaps > 0:
					got := formatGaps(res.gaps)
					if res.urgent {
						got += " !"
					}
					if got != s.want {
						t.Errorf("step %d, gaps at +%d ms: %q, want %q", i, (s.at-base)/1000, got, s.want)
					}
				case s.origin != nil:
					got := ""
					if res.overdue {
						got = "overdue"
					}
					if got != s.want {
						t.Errorf("step %d, origin asked at +%d ms: %q, want %q", i, (s.at-base)/1000, got, s.want)
					}
				}
			}
		})
	}
}

func TestConfig(t *testing.T) {
	r := New(Config{})
	if r.delay != 2_000_000 || r.lead != 600_000 || r.window != 64 || r.stopAfter != 2 || r.interval != 0 {
		t.Errorf("defaults: %+v", r)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Delay: -1}, "Delay"}, {Config{Lead: -1}, "Lead"}, {Config{Window: -1}, "Window"},
		{Config{Interval: -1}, "Interval"}, {Config{StopAfter: -1}, "StopAfter"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	if err := defaults.Validate(); err != nil {
		t.Error(err)
	}
}

// TestLongStopIsBounded: after an hour of silence with 10 ms chunks, one
// Advance passes at most maxSteps chunks; the rest follow on later calls.
func TestLongStopIsBounded(t *testing.T) {
	r := New(Config{Delay: time.Second})
	var st State
	w := world{}
	for seq := uint32(1); seq <= 2; seq++ {
		ts := at(float64(seq) * 10)
		w[seq] = &Chunk{Known: true, Time: ts, Done: true, DoneAt: ts}
		r.Manifest(&st, ts, seq, ts, false)
	}
	now := at(3600 * sec)
	ds := r.Advance(&st, now, w, nil)
	if len(ds) > maxSteps+2 {
		t.Fatalf("%d decisions in one call", len(ds))
	}
	for range 200 {
		ds = r.Advance(&st, now, w, ds[:0])
	}
	if want := uint64(3600*100 - 100 - 2); st.Missed() < want-2 || st.Missed() > want+2 {
		t.Errorf("missed %d, want about %d", st.Missed(), want)
	}
}

// TestAdvanceAllocs: the simulator calls Advance for a million peers; with
// room in dst it allocates nothing.
func TestAdvanceAllocs(t *testing.T) {
	r := New(Config{})
	var st State
	w := world{}
	for seq := uint32(1); seq <= 3; seq++ {
		ts := at(float64(seq) * sec)
		w[seq] = &Chunk{Known: true, Time: ts, Done: true, DoneAt: ts + 100}
		r.Manifest(&st, ts+100, seq, ts, false)
	}
	dst := make([]Decision, 0, 16)
	gs := make([]uint32, 0, 8)
	var win Window = w
	allocs := testing.AllocsPerRun(100, func() {
		dst = r.Advance(&st, at(3*sec+200), win, dst[:0])
		gs = r.Gaps(&st, at(3*sec+200), win, gs[:0], 8)
		r.GapUrgent(&st, at(3*sec+200), win)
	})
	if allocs != 0 {
		t.Errorf("%v allocations per Advance", allocs)
	}
}

// ring is a window of 16 chunks, as the simulator keeps one per peer.
type ring [16]struct {
	seq uint32
	c   Chunk
}

func (r *ring) Chunk(seq uint32) Chunk {
	if e := &r[seq%16]; e.seq == seq {
		return e.c
	}
	return Chunk{}
}

// BenchmarkAdvance: one chunk's manifest, its rebuild and an advance that
// plays it, with 500 ms chunks: the rule's cost per chunk per viewer.
func BenchmarkAdvance(b *testing.B) {
	r := New(Config{})
	var st State
	w := new(ring)
	ds := make([]Decision, 0, 16)
	var win Window = w
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		seq := uint32(i + 1)
		ts := base + int64(i)*500_000
		w[seq%16].seq, w[seq%16].c = seq, Chunk{Known: true, Time: ts, Done: true, DoneAt: ts + 100_000}
		r.Manifest(&st, ts+50_000, seq, ts, false)
		ds = r.Advance(&st, ts+100_000, win, ds[:0])
	}
	if st.Played() != uint64(b.N) {
		b.Fatalf("played %d of %d", st.Played(), b.N)
	}
}
