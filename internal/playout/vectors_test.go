package playout

// Shared test vectors: testdata/vectors/playout.json is what this rule
// decides in every scenario of playout_test.go. The browser twin,
// webclient/js/playout.js, replays the same events in
// webclient/test/playout.test.js and must decide the same, step by step.
//
// TestPlayoutVectors rebuilds the file from the Go rule and fails if it
// differs from the committed one; after an intended change to the rule
// (and to its twin), rewrite it with
//
//	go test ./internal/playout -run TestPlayoutVectors -update

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"testing"

	"github.com/coopcast/coopcast/internal/golden"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors/playout.json from what the Go rule decides now")

var playoutVectorsPath = filepath.Join("..", "..", "testdata", "vectors", "playout.json")

type vecFile struct {
	About string    `json:"about"`
	Cases []vecCase `json:"cases"`
}

type vecCase struct {
	Name string `json:"name"`
	// Config is the rule's Config in µs; zeros mean the defaults.
	Config vecConfig `json:"config"`
	Media  bool      `json:"media"`
	Steps  []vecStep `json:"steps"`
}

type vecConfig struct {
	DelayUS    int64 `json:"delay_us"`
	LeadUS     int64 `json:"lead_us"`
	Window     int   `json:"window"`
	IntervalUS int64 `json:"interval_us"`
	StopAfter  int   `json:"stop_after"`
}

// vecStep is one event at At (µs): a manifest known, a chunk rebuilt, an
// advance with the decisions and state that follow, or a gaps query with
// its answer, or the origin asked with what it said.
type vecStep struct {
	At       int64        `json:"at"`
	Manifest *vecManifest `json:"manifest,omitempty"`
	Rebuilt  *uint32      `json:"rebuilt,omitempty"`
	Advance  *vecAdvance  `json:"advance,omitempty"`
	Gaps     *vecGaps     `json:"gaps,omitempty"`
	Origin   *vecOrigin   `json:"origin,omitempty"`
}

// vecOrigin is Overdue, then Origin(latest, ok).
type vecOrigin struct {
	Overdue bool   `json:"overdue"`
	Latest  uint32 `json:"latest"`
	OK      bool   `json:"ok"`
}

type vecManifest struct {
	Seq      uint32 `json:"seq"`
	Time     int64  `json:"time"`
	Keyframe bool   `json:"keyframe"`
	End      bool   `json:"end"`
}

type vecAdvance struct {
	Decisions []vecDecision `json:"decisions"`
	State     vecState      `json:"state"`
}

type vecDecision struct {
	Op     string `json:"op"`
	Seq    uint32 `json:"seq"`
	OnTime bool   `json:"on_time,omitempty"`
}

type vecState struct {
	Next       uint32 `json:"next"`
	Started    bool   `json:"started"`
	Newest     uint32 `json:"newest"`
	OffsetUS   int64  `json:"offset_us"`
	IntervalUS int64  `json:"interval_us"`
	Played     uint64 `json:"played"`
	OnTime     uint64 `json:"on_time"`
	Missed     uint64 `json:"missed"`
	NeedKey    bool   `json:"need_keyframe"`
	Stopped    bool   `json:"stopped"`
	Ended      bool   `json:"ended"`
}

// vecGaps is Gaps(n) and GapUrgent.
type vecGaps struct {
	N      int      `json:"n"`
	Want   []uint32 `json:"want"`
	Urgent bool     `json:"urgent"`
}

func buildVectors() vecFile {
	f := vecFile{About: "What internal/playout decides in the scenarios of internal/playout/playout_test.go; " +
		"webclient/js/playout.js must decide the same. Times are µs since the Unix epoch. " +
		"Written by go test ./internal/playout -run TestPlayoutVectors -update; do not edit."}
	for _, sc := range scenarios {
		r := New(sc.cfg)
		c := vecCase{Name: sc.name, Media: sc.media, Config: vecConfig{DelayUS: sc.cfg.Delay.Microseconds(),
			LeadUS: sc.cfg.Lead.Microseconds(), Window: sc.cfg.Window, IntervalUS: sc.cfg.Interval.Microseconds(), StopAfter: sc.cfg.StopAfter}}
		for i, res := range play(sc) {
			s := sc.steps[i]
			v := vecStep{At: s.at}
			switch {
			case s.manifest != nil:
				m := s.manifest
				v.Manifest = &vecManifest{Seq: m.seq, Time: m.ts, Keyframe: m.keyframe, End: m.end}
			case s.rebuilt != nil:
				v.Rebuilt = s.rebuilt
			case s.advance:
				a := &vecAdvance{Decisions: []vecDecision{}, State: stateOf(&r, &res.st)}
				for _, d := range res.decisions {
					a.Decisions = append(a.Decisions, vecDecision{Op: d.Op.String(), Seq: d.Seq, OnTime: d.OnTime})
				}
				v.Advance = a
			case s.gaps > 0:
				v.Gaps = &vecGaps{N: s.gaps, Want: res.gaps, Urgent: res.urgent}
			case s.origin != nil:
				v.Origin = &vecOrigin{Overdue: res.overdue, Latest: s.origin.latest, OK: s.origin.ok}
			}
			c.Steps = append(c.Steps, v)
		}
		f.Cases = append(f.Cases, c)
	}
	return f
}

func stateOf(r *Rule, st *State) vecState {
	next, started := st.Next()
	newest, _ := st.Newest()
	off, _ := st.Offset()
	return vecState{Next: next, Started: started, Newest: newest, OffsetUS: off, IntervalUS: r.Interval(st),
		Played: st.Played(), OnTime: st.OnTime(), Missed: st.Missed(), NeedKey: st.NeedKeyframe(), Stopped: st.Stopped(), Ended: st.Ended()}
}

func TestPlayoutVectors(t *testing.T) {
	b, err := json.MarshalIndent(buildVectors(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, playoutVectorsPath, append(b, '\n'), *update, 128<<10,
		"make webclient/js/playout.js decide the same (node --test webclient/test/)")
}
