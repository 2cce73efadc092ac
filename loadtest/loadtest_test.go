package loadtest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestValidateNamesTheProblem(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Peers: MaxRealPeers + 1}, "--peers"},
		{Config{Peers: -1}, "--peers"},
		{Config{Bitrate: 1}, "--bitrate"},
		{Config{Trees: 4, K: 5}, "--k"},
		{Config{Churn: 101}, "--churn"},
		{Config{Mode: "bogus"}, "--mode must be real or sim"},
		{Config{Duration: time.Second}, "--duration"},
	} {
		if err := tc.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Validate(%+v) = %v, want it to name %s", tc.cfg, err, tc.want)
		}
	}
}

// TestSmallRealRun: a small real swarm end to end through Run: every
// chunk identical, the measures filled in. (Under -race pion is several
// times slower, so the bar for continuity here is the smoke-test one;
// docs/BENCHMARKS.md holds the real figures.)
func TestSmallRealRun(t *testing.T) {
	res, err := Run(context.Background(), Config{Peers: 8, Duration: 10 * time.Second, Bitrate: 300_000, JoinOver: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.ChunksCorrupt != 0 || res.ChunksGood < 8*10 {
		t.Fatalf("chunks identical %d, corrupt %d", res.ChunksGood, res.ChunksCorrupt)
	}
	if res.Continuity < 0.8 || res.OriginEgressCopies <= 0 || res.StartupP95 <= 0 || len(res.DepthMax) != 4 {
		t.Fatalf("measures: %+v", res)
	}
}

func TestFailIf(t *testing.T) {
	conds, err := ParseConditions("continuity<0.99, origin_egress_copies>=3,chunks_corrupt!=0")
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{Continuity: 0.95, OriginEgressCopies: 2.5, ChunksCorrupt: 1}
	got := Failed(res, conds)
	if len(got) != 2 || !strings.HasPrefix(got[0], "continuity<0.99 (continuity = 0.95)") || !strings.HasPrefix(got[1], "chunks_corrupt!=0") {
		t.Fatalf("failed: %q", got)
	}
	if got := Failed(&Result{Continuity: 1, OriginEgressCopies: 2}, conds); len(got) != 0 {
		t.Fatalf("a good run failed: %q", got)
	}
	for _, bad := range []struct{ in, want string }{
		{"continuity", "want MEASURE OP NUMBER"},
		{"continuity<high", "must be a number"},
		{"offload<0.9", `no measure "offload"; measures: `},
	} {
		if _, err := ParseConditions(bad.in); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.in, err, bad.want)
		}
	}
}

// TestBaselineHTTP: with the plain-HTTP baseline, the origin sends about
// one copy of the stream per viewer, where the swarm sent a few in all.
func TestBaselineHTTP(t *testing.T) {
	res, err := Run(context.Background(), Config{Peers: 6, Duration: 6 * time.Second, Bitrate: 300_000, JoinOver: 300 * time.Millisecond, Baseline: "http"})
	if err != nil {
		t.Fatal(err)
	}
	b := res.Baseline
	if b == nil || b.Viewers != 6 {
		t.Fatalf("baseline: %+v", b)
	}
	// Six viewers each fetch every chunk of the window once: six copies,
	// less a chunk or two for a viewer that started late or stopped early,
	// plus what the manifests (the "playlist") cost.
	t.Logf("baseline %+v; swarm %.2f copies", b, res.OriginEgressCopies)
	if b.OriginEgressCopies < 5 || b.OriginEgressCopies > 6.6 || b.Continuity < 0.9 {
		t.Fatalf("baseline: %+v", b)
	}
	if res.OriginEgressCopies >= b.OriginEgressCopies {
		t.Fatalf("the swarm sent %.2f copies, the plain origin %.2f", res.OriginEgressCopies, b.OriginEgressCopies)
	}
}

func TestScenarios(t *testing.T) {
	c, err := Apply("news-event", Config{Peers: 50})
	if err != nil {
		t.Fatal(err)
	}
	if c.Peers != 50 || c.Arrival != "exponential" || c.Churn != 5 || c.Scenario != "news-event" {
		t.Fatalf("applied: %+v", c)
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	// A surge: arrivals never go back, and most come in the second half.
	at := c.withDefaults().arrivals()
	late := 0
	for i, a := range at {
		if i > 0 && a < at[i-1] {
			t.Fatalf("arrival %d at %v before %v", i, a, at[i-1])
		}
		if a > c.JoinOver/2 {
			late++
		}
	}
	if late < len(at)*2/3 {
		t.Errorf("%d of %d arrive in the second half: not a surge", late, len(at))
	}
	for _, name := range ScenarioNames() {
		c, err := Apply(name, Config{})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Validate(); err != nil {
			t.Errorf("scenario %s: %v", name, err)
		}
	}
	if _, err := Apply("superbowl", Config{}); err == nil || !strings.Contains(err.Error(), "flash-crowd") {
		t.Errorf("unknown scenario: %v", err)
	}
}

func TestJoinTimesCSV(t *testing.T) {
	got, err := parseJoinTimes(strings.NewReader("t_seconds,comment\n0.5\n0.1,first\n\n2\n"), "x.csv")
	if err != nil || len(got) != 3 || got[0] != 100*time.Millisecond || got[2] != 2*time.Second {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range []struct{ in, want string }{
		{"0.5\nsoon\n", "line 2: \"soon\" is not a time"},
		{"-1\n", "outside [0, 86400]"},
		{"header only\n", "no join times"},
	} {
		if _, err := parseJoinTimes(strings.NewReader(bad.in), "x.csv"); err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("%q: %v, want %q", bad.in, err, bad.want)
		}
	}
	c := Config{JoinTimes: got, Duration: 10 * time.Second}.withDefaults()
	if c.Peers != 3 || c.JoinOver != 2*time.Second {
		t.Errorf("peers %d over %v", c.Peers, c.JoinOver)
	}
}

// TestHTMLReport: the report is one page with the seven charts, each
// drawn from the run's data, and nothing it loads from elsewhere.
func TestHTMLReport(t *testing.T) {
	res := &Result{Scenario: Scenario{Name: "flash-crowd", Peers: 3, DurationS: 3, Bitrate: 400000, Source: "synthetic"},
		Series:     []Sample{{T: 1, Peers: 2, OriginMbps: 1.2, Continuity: 1}, {T: 2, Peers: 3, OriginMbps: 1.1, Continuity: 0.5}},
		StartupCDF: []float64{10, 20, 30}, LatencyCDF: []float64{50, 60, 70},
		DepthHist: [][]int{{0, 2, 1}, {0, 3}},
		Baseline:  &Baseline{Series: []Sample{{T: 1, OriginMbps: 3.6}}}}
	var b strings.Builder
	if err := WriteHTML(&b, res); err != nil {
		t.Fatal(err)
	}
	page := b.String()
	if n := strings.Count(page, "<svg"); n != 7 {
		t.Errorf("%d charts, want 7", n)
	}
	// Egress (two lines), peers, continuity, startup, latency: polylines;
	// no repair in this run; depth as bars.
	if n := strings.Count(page, "<polyline"); n != 6 {
		t.Errorf("%d lines drawn, want 6", n)
	}
	if !strings.Contains(page, "no data in this run") || strings.Count(page, "<rect x=") < 2 {
		t.Error("the empty repair chart or the depth bars are missing")
	}
	for _, ext := range []string{"<script", "src=", "href=", "@import"} {
		if strings.Contains(page, ext) {
			t.Errorf("the page loads something (%q): it must stand alone", ext)
		}
	}
	if !strings.Contains(page, "flash-crowd, 3 peers") || !strings.Contains(page, "plain HTTP origin") {
		t.Error("title or baseline legend missing")
	}
}

// TestChurnSeries: with churn, peers are killed and replaced while the
// report's sampler reads them (run under -race), and the series covers
// the run a second at a time.
func TestChurnSeries(t *testing.T) {
	res, err := Run(context.Background(), Config{Peers: 8, Duration: 12 * time.Second, Bitrate: 200_000, JoinOver: 300 * time.Millisecond, Churn: 100})
	if err != nil {
		t.Fatal(err)
	}
	if res.Killed < 1 || res.PeersTotal != 8+res.Killed {
		t.Fatalf("killed %d of %d peers", res.Killed, res.PeersTotal)
	}
	if n := len(res.Series); n < 10 || n > 13 {
		t.Fatalf("%d samples in a 12 s run", n)
	}
	for _, s := range res.Series[2:] {
		if s.Peers < 7 || s.Peers > 8 || s.OriginMbps <= 0 { // 7 between a kill and its replacement
			t.Fatalf("sample %+v", s)
		}
	}
}

// TestProgressLine: on a terminal one line is rewritten in place once a
// second (padded over a longer previous line) and ended with a newline;
// elsewhere a plain line every 5 s.
func TestProgressLine(t *testing.T) {
	t0 := time.Unix(1000, 0)
	var live strings.Builder
	p := newProgressLine(Config{Progress: &live, ProgressLive: true}, t0)
	for i, f := range []string{"peers 10 long", "peers 20", "peers 30"} {
		p.show(t0.Add(time.Duration(i+1)*time.Second), float64(i+1)/4, f)
		p.show(t0.Add(time.Duration(i+1)*time.Second+500*time.Millisecond), 0, "not due")
	}
	p.end()
	want := "\r[#####...............] peers 10 long" + "\r[##########..........] peers 20     " + "\r[###############.....] peers 30\n"
	if live.String() != want {
		t.Errorf("live:\n%q\nwant\n%q", live.String(), want)
	}
	var plain strings.Builder
	p = newProgressLine(Config{Progress: &plain}, t0)
	for s := 1; s <= 12; s++ {
		p.show(t0.Add(time.Duration(s)*time.Second), 0, fmt.Sprintf("at %d", s))
	}
	p.end()
	if plain.String() != "at 5\nat 10\n" {
		t.Errorf("plain: %q", plain.String())
	}
	if (&progressLine{}).due(t0) {
		t.Error("no writer, yet a line is due")
	}
}

// TestChurnVanishReal: real peers that vanish (their sockets, tracker
// connection and HTTP fetches go silent, nothing closes) are found by
// their children's complaints, and the swarm plays on.
func TestChurnVanishReal(t *testing.T) {
	res, err := Run(context.Background(), Config{Peers: 12, Duration: 20 * time.Second, Bitrate: 200_000, JoinOver: 600 * time.Millisecond,
		Churn: 100, ChurnUngraceful: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed %d, complaints %d, repairs %d, HTTP fetches %d, continuity %.4f", res.Killed, res.Complaints, res.Repairs, res.HTTPFetches, res.Continuity)
	if res.Killed < 2 || res.PeersTotal != 12+res.Killed {
		t.Fatalf("killed %d of %d", res.Killed, res.PeersTotal)
	}
	if res.Complaints == 0 {
		t.Fatalf("%d peers vanished and no child complained of a silent parent", res.Killed)
	}
	if res.ChunksCorrupt != 0 || res.Continuity < 0.8 {
		t.Fatalf("chunks corrupt %d, continuity %.4f", res.ChunksCorrupt, res.Continuity)
	}
}
