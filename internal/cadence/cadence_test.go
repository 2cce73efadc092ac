package cadence

import (
	"strings"
	"testing"
	"time"
)

// base is the cases' epoch (µs), a realistic Unix time: the JS twin must
// get the same answers with Numbers of this size.
const base int64 = 1_764_000_000_000_000

// at is base plus ms milliseconds.
func at(ms float64) int64 { return base + int64(ms*1000) }

// A case: 500 ms chunks unless said, the defaults (1.5 s silence, 6 s
// link timeout, 300 ms least slack); now is base + 10 s.
type tcase struct {
	name   string
	cfg    Config
	now    int64
	stream Stream
	trees  []Tree
	want   string // the reasons, space-separated, "-" for None
}

const now = base + 10_000_000

// flowing is a stream whose newest manifest came 100 ms ago.
var flowing = Stream{Interval: 500_000, NewestAt: at(9_900)}

// ok is a tree that delivered 50 ms ago over a link open for a minute.
var ok = Tree{HasParent: true, OpenSince: at(-50_000), LastRx: at(9_950)}

// with returns ok changed by f.
func with(f func(*Tree)) Tree {
	t := ok
	f(&t)
	return t
}

var cases = []tcase{
	{name: "all deliver", now: now, stream: flowing, trees: []Tree{ok, ok, ok, ok}, want: "- - - -"},
	{
		name: "behind: a chunk's news came 301 ms ago, nothing of it from tree 2 for as long",
		now:  now, stream: flowing,
		trees: []Tree{ok, ok, with(func(t *Tree) { t.LastRx, t.Waiting = at(9_600), at(9_699) }), ok},
		want:  "- - behind -",
	},
	{
		name: "not yet behind at exactly the slack",
		now:  now, stream: flowing,
		trees: []Tree{ok, ok, with(func(t *Tree) { t.LastRx, t.Waiting = at(9_600), at(9_700) }), ok},
		want:  "- - - -",
	},
	{
		name: "a lagging tree gets twice its lag as slack",
		now:  now, stream: flowing,
		trees: []Tree{ok, with(func(t *Tree) { t.LastRx, t.Waiting, t.Lag = at(9_000), at(9_500), 250_000 }),
			with(func(t *Tree) { t.LastRx, t.Waiting, t.Lag = at(9_000), at(9_499), 250_000 }), ok},
		want: "- - behind -",
	},
	{
		name: "long chunks: a quarter interval of slack",
		now:  now, stream: Stream{Interval: 2_000_000, NewestAt: at(9_900)},
		trees: []Tree{ok, with(func(t *Tree) { t.LastRx, t.Waiting = at(9_000), at(9_600) }),
			with(func(t *Tree) { t.LastRx, t.Waiting = at(9_000), at(9_499) }), ok},
		want: "- - behind -",
	},
	{
		name: "a parent that delivered within the slack is not behind, its news pending or not",
		now:  now, stream: flowing,
		trees: []Tree{with(func(t *Tree) { t.LastRx, t.Waiting = at(9_800), at(9_000) }), ok, ok, ok},
		want:  "- - - -",
	},
	{
		name: "a new link gets an interval and the slack before it can be behind",
		now:  now, stream: flowing,
		trees: []Tree{with(func(t *Tree) { t.OpenSince, t.LastRx, t.Waiting = at(9_200), at(9_200), at(9_000) }),
			with(func(t *Tree) { t.OpenSince, t.LastRx, t.Waiting = at(9_199), at(9_199), at(9_000) }), ok, ok},
		want: "- behind - -",
	},
	{
		name: "a stopped stream is no parent's fault: no news for three intervals",
		now:  now, stream: Stream{Interval: 500_000, NewestAt: at(8_500)},
		trees: []Tree{with(func(t *Tree) { t.LastRx, t.Waiting = at(8_600), at(8_500) }), with(func(t *Tree) { t.LastRx, t.Waiting = at(8_600), at(8_500) }), ok, ok},
		want:  "- - - -",
	},
	{
		name: "silent: nothing for the stall time while others deliver",
		now:  now, stream: Stream{Interval: 500_000, NewestAt: at(5_000)},
		trees: []Tree{with(func(t *Tree) { t.LastRx = at(8_499) }), with(func(t *Tree) { t.LastRx = at(8_500) }), ok, ok},
		want:  "silent - - -",
	},
	{
		name: "no tree delivers: none is silent",
		now:  now, stream: Stream{Interval: 500_000, NewestAt: at(5_000)},
		trees: []Tree{with(func(t *Tree) { t.LastRx = at(8_000) }), with(func(t *Tree) { t.LastRx = at(9_200) }), with(func(t *Tree) { t.LastRx = at(9_000) }), with(func(t *Tree) { t.LastRx = at(9_100) })},
		want:  "- - - -",
	},
	{
		name: "stuck: a link not open 6 s after the parent was named",
		now:  now, stream: flowing,
		trees: []Tree{with(func(t *Tree) { t.OpenSince, t.LastRx = 0, at(3_999) }), with(func(t *Tree) { t.OpenSince, t.LastRx = 0, at(4_000) }), ok, ok},
		want:  "stuck - - -",
	},
	{
		name: "no parent: nothing to judge",
		now:  now, stream: flowing,
		trees: []Tree{{}, {HasParent: false, LastRx: at(0)}, ok, ok},
		want:  "- - - -",
	},
	{
		name: "every parent quiet and the origin ahead: starved, save a tree that brought part of a newer chunk or delivered within the slack",
		now:  now, stream: Stream{Interval: 500_000, NewestAt: at(9_200), OriginAhead: true, Due: at(9_650)},
		trees: []Tree{with(func(t *Tree) { t.LastRx = at(9_200) }), with(func(t *Tree) { t.LastRx, t.AheadOfNews = at(9_200), true }),
			with(func(t *Tree) { t.LastRx = at(9_700) }), with(func(t *Tree) { t.LastRx = at(9_699) })},
		want: "starved - - starved",
	},
	{
		name: "the origin ahead, the next chunk's news not the slack past due: no starved",
		now:  now, stream: Stream{Interval: 500_000, NewestAt: at(9_200), OriginAhead: true, Due: at(9_700)},
		trees: []Tree{with(func(t *Tree) { t.LastRx = at(9_200) }), ok, ok, ok},
		want:  "- - - -",
	},
	{
		name: "news that comes late here as a rule: starved only past twice its lateness",
		now:  now, stream: Stream{Interval: 500_000, NewestAt: at(9_000), OriginAhead: true, Due: at(9_200), NewsLag: 400_000},
		trees: []Tree{with(func(t *Tree) { t.LastRx = at(9_000) }), ok, ok, ok},
		want:  "- - - -",
	},
	{
		name: "news that comes late here as a rule, and later still: starved",
		now:  now, stream: Stream{Interval: 500_000, NewestAt: at(9_000), OriginAhead: true, Due: at(9_199), NewsLag: 400_000},
		trees: []Tree{with(func(t *Tree) { t.LastRx = at(9_000) }), ok, ok, ok},
		want:  "starved - - -",
	},
	{
		name: "the origin ahead but nothing overdue told: no starved",
		now:  now, stream: Stream{Interval: 500_000, NewestAt: at(9_200)},
		trees: []Tree{with(func(t *Tree) { t.LastRx = at(9_200) }), ok, ok, ok},
		want:  "- - - -",
	},
	{
		name: "settings: a 3 s silence timeout, 1 s link timeout, 100 ms least slack",
		cfg:  Config{SilenceTimeout: 3 * time.Second, LinkTimeout: time.Second, MinSlack: 100 * time.Millisecond},
		now:  now, stream: Stream{Interval: 200_000, NewestAt: at(9_950)},
		trees: []Tree{with(func(t *Tree) { t.LastRx = at(7_500) }), with(func(t *Tree) { t.LastRx = at(6_999) }),
			with(func(t *Tree) { t.OpenSince, t.LastRx = 0, at(8_999) }), with(func(t *Tree) { t.LastRx, t.Waiting = at(9_000), at(9_899) })},
		want: "- silent stuck behind",
	},
}

func format(rs []Reason) string {
	var b []string
	for _, r := range rs {
		s := r.String()
		if s == "" {
			s = "-"
		}
		b = append(b, s)
	}
	return strings.Join(b, " ")
}

func TestJudge(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := New(tc.cfg)
			if got := format(r.Judge(tc.now, tc.stream, tc.trees, nil)); got != tc.want {
				t.Errorf("judged %q, want %q", got, tc.want)
			}
		})
	}
}

func TestConfig(t *testing.T) {
	r := New(Config{})
	if r.silence != 1_500_000 || r.link != 6_000_000 || r.minSlack != 300_000 {
		t.Errorf("defaults: %+v", r)
	}
	for _, tc := range []struct {
		cfg  Config
		want string
	}{{Config{SilenceTimeout: -1}, "SilenceTimeout"}, {Config{LinkTimeout: -1}, "LinkTimeout"}, {Config{MinSlack: -1}, "MinSlack"}} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want an error naming %s", tc.cfg, err, tc.want)
		}
	}
	if s := New(Config{}).StallAfter(Stream{Interval: 2_000_000}); s != 4_000_000 {
		t.Errorf("stall after, 2 s chunks: %d µs, want two intervals", s)
	}
}

// TestJudgeAllocs: with room in dst, judging allocates nothing (the peer
// runs it every 50 ms).
func TestJudgeAllocs(t *testing.T) {
	r := New(Config{})
	trees := []Tree{ok, ok, ok, ok}
	dst := make([]Reason, 0, 4)
	if a := testing.AllocsPerRun(100, func() { dst = r.Judge(now, flowing, trees, dst[:0]) }); a != 0 {
		t.Errorf("%v allocations per Judge", a)
	}
}
