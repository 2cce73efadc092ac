package cadence

// Shared test vectors: testdata/vectors/cadence.json is what this rule
// judges in every case of cadence_test.go. The browser twin,
// webclient/js/cadence.js, judges the same cases in
// webclient/test/cadence.test.js and must agree. After an intended change
// to the rule (and to its twin), rewrite the file with
//
//	go test ./internal/cadence -run TestCadenceVectors -update

import (
	"encoding/json"
	"flag"
	"path/filepath"
	"testing"

	"github.com/coopcast/coopcast/internal/golden"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors/cadence.json from what the Go rule judges now")

type vecFile struct {
	About string    `json:"about"`
	Cases []vecCase `json:"cases"`
}

type vecCase struct {
	Name string `json:"name"`
	// Config in µs; zeros mean the defaults.
	Config struct {
		SilenceUS  int64 `json:"silence_us"`
		LinkUS     int64 `json:"link_us"`
		MinSlackUS int64 `json:"min_slack_us"`
	} `json:"config"`
	Now    int64 `json:"now"`
	Stream struct {
		IntervalUS  int64 `json:"interval_us"`
		NewestAt    int64 `json:"newest_at"`
		OriginAhead bool  `json:"origin_ahead"`
		Due         int64 `json:"due"`
		NewsLagUS   int64 `json:"news_lag_us"`
	} `json:"stream"`
	Trees []vecTree `json:"trees"`
	// Want: per tree, the reason ("" for none).
	Want []string `json:"want"`
	// Slack and StallAfter (µs) per tree and for the stream.
	Slack      []int64 `json:"slack_us"`
	StallAfter int64   `json:"stall_after_us"`
}

type vecTree struct {
	HasParent   bool  `json:"has_parent"`
	OpenSince   int64 `json:"open_since"`
	LastRx      int64 `json:"last_rx"`
	LagUS       int64 `json:"lag_us"`
	Waiting     int64 `json:"waiting"`
	AheadOfNews bool  `json:"ahead_of_news"`
}

func buildVectors() vecFile {
	f := vecFile{About: "What internal/cadence judges in the cases of internal/cadence/cadence_test.go; " +
		"webclient/js/cadence.js must judge the same. Times are µs since the Unix epoch. " +
		"Written by go test ./internal/cadence -run TestCadenceVectors -update; do not edit."}
	for _, tc := range cases {
		r := New(tc.cfg)
		var c vecCase
		c.Name, c.Now = tc.name, tc.now
		c.Config.SilenceUS, c.Config.LinkUS, c.Config.MinSlackUS = tc.cfg.SilenceTimeout.Microseconds(), tc.cfg.LinkTimeout.Microseconds(), tc.cfg.MinSlack.Microseconds()
		c.Stream.IntervalUS, c.Stream.NewestAt, c.Stream.OriginAhead = tc.stream.Interval, tc.stream.NewestAt, tc.stream.OriginAhead
		c.Stream.Due, c.Stream.NewsLagUS = tc.stream.Due, tc.stream.NewsLag
		for _, t := range tc.trees {
			c.Trees = append(c.Trees, vecTree{HasParent: t.HasParent, OpenSince: t.OpenSince, LastRx: t.LastRx, LagUS: t.Lag, Waiting: t.Waiting, AheadOfNews: t.AheadOfNews})
			c.Slack = append(c.Slack, r.Slack(tc.stream, t))
		}
		for _, w := range r.Judge(tc.now, tc.stream, tc.trees, nil) {
			c.Want = append(c.Want, w.String())
		}
		c.StallAfter = r.StallAfter(tc.stream)
		f.Cases = append(f.Cases, c)
	}
	return f
}

func TestCadenceVectors(t *testing.T) {
	b, err := json.MarshalIndent(buildVectors(), "", " ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, filepath.Join("..", "..", "testdata", "vectors", "cadence.json"), append(b, '\n'), *update, 64<<10,
		"make webclient/js/cadence.js judge the same (node --test webclient/test/)")
}
