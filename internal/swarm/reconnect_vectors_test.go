package swarm

// Shared test vectors: testdata/vectors/reconnect.json is the schedule a
// peer's reconnect policy (reconnect, over internal/backoff.Backoff)
// gives for fixed jitter draws. The browser twin, webclient/js/backoff.js,
// replays the same sessions in webclient/test/backoff.test.js and must
// give the same delays to the nanosecond.
//
// TestReconnectVectors rebuilds the file and fails if it differs from the
// committed one; after an intended change to the policy (and to its twin),
// rewrite it with
//
//	go test ./internal/swarm -run TestReconnectVectors -update

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/backoff"
	"github.com/coopcast/coopcast/internal/golden"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors/reconnect.json from what the Go policy gives now")

var reconnectVectorsPath = filepath.Join("..", "..", "testdata", "vectors", "reconnect.json")

type reconnectVectors struct {
	About string          `json:"about"`
	Cases []reconnectCase `json:"cases"`
}

type reconnectCase struct {
	Name  string          `json:"name"`
	Steps []reconnectStep `json:"steps"`
}

// reconnectStep is one session that ended: how (NoChannel: the tracker
// answered no-channel), how long it had been welcomed (LastedNS < 0:
// never), the heartbeat of the last welcome, the jitter drawn (Rand) and
// the delay the policy gave.
type reconnectStep struct {
	NoChannel   bool    `json:"no_channel,omitempty"`
	LastedNS    int64   `json:"lasted_ns"`
	HeartbeatNS int64   `json:"heartbeat_ns"`
	Rand        float64 `json:"rand"`
	DelayNS     int64   `json:"delay_ns"`
}

func TestReconnectVectors(t *testing.T) {
	const s = time.Second
	never := time.Duration(-1)
	lost := errors.New("tracker connection: EOF")
	noChan := fmt.Errorf("tracker: no channel: %w", ErrNoChannel)
	type in struct {
		err       error
		lasted    time.Duration
		heartbeat time.Duration
	}
	repeat := func(n int, x in) []in {
		out := make([]in, n)
		for i := range out {
			out[i] = x
		}
		return out
	}
	cases := []struct {
		name     string
		sessions []in
	}{
		{"never welcomed: 250 ms doubling to the 10 s cap", repeat(9, in{lost, never, 0})},
		{"welcomed with a 2 s heartbeat: capped at 4 s", append([]in{{lost, 20 * s, 2 * s}}, repeat(7, in{lost, never, 0})...)},
		{"a 7 s heartbeat: the cap stays 10 s", append([]in{{lost, 30 * s, 7 * s}}, repeat(7, in{lost, never, 0})...)},
		{"a short session does not reset", []in{{lost, never, 0}, {lost, never, 0}, {lost, 3 * s, 2 * s}, {lost, never, 0}}},
		{"a session as long as the cap resets", []in{{lost, never, 0}, {lost, never, 0}, {lost, never, 0}, {lost, 10 * s, 2 * s},
			{lost, never, 0}, {lost, never, 0}, {lost, 4 * s, 2 * s}}},
		{"no-channel restarts the schedule once per outage", []in{{lost, 20 * s, 2 * s}, {lost, never, 0}, {lost, never, 0},
			{noChan, never, 0}, {noChan, never, 0}, {noChan, never, 0}, {lost, 1 * s, 2 * s}, {noChan, never, 0}}},
	}
	// The draws: spread over [0, 1), both ends included, and one out of
	// range (taken as 0).
	draws := []float64{0, 0.999999, 0.5, 0.123456789, 0.875, 0.3333333333, 0.7, 1, 0.0625, 0.9}
	var f reconnectVectors
	f.About = "What a peer's reconnect policy (internal/swarm reconnect over internal/backoff) gives for each session that ended, with the jitter drawn as rand; webclient/js/backoff.js must give the same. Durations in ns. Written by go test ./internal/swarm -run TestReconnectVectors -update; do not edit."
	k := 0
	for _, tc := range cases {
		c := reconnectCase{Name: tc.name}
		var draw float64
		r := newReconnect(backoff.Backoff{Rand: func() float64 { return draw }}, false)
		for _, x := range tc.sessions {
			draw = draws[k%len(draws)]
			k++
			d := r.next(x.err, x.lasted, x.heartbeat)
			c.Steps = append(c.Steps, reconnectStep{NoChannel: errors.Is(x.err, ErrNoChannel), LastedNS: int64(x.lasted),
				HeartbeatNS: int64(x.heartbeat), Rand: draw, DelayNS: int64(d)})
		}
		f.Cases = append(f.Cases, c)
	}
	b, err := json.MarshalIndent(f, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, reconnectVectorsPath, append(b, '\n'), *update, 32<<10,
		"make webclient/js/backoff.js give the same (node --test webclient/test/)")
}
