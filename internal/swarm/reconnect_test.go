package swarm

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/backoff"
)

// TestReconnectPolicy checks Run's reconnect schedule step by step, with
// the jitter drawn as 0.999… (so each delay is its step's upper bound).
func TestReconnectPolicy(t *testing.T) {
	const ms = time.Millisecond
	lost := errors.New("tracker connection: EOF")
	noChan := fmt.Errorf("tracker: no channel: %w", ErrNoChannel)
	type step struct {
		err       error
		lasted    time.Duration // < 0: never joined in that session
		heartbeat time.Duration
		want      time.Duration
	}
	never := time.Duration(-1)
	for _, tc := range []struct {
		name   string
		bo     backoff.Backoff
		origin bool
		steps  []step
	}{
		{"a peer never welcomed: 250 ms doubling to 10 s", backoff.Backoff{}, false, []step{
			{lost, never, 0, 250 * ms}, {lost, never, 0, 500 * ms}, {lost, never, 0, time.Second}, {lost, never, 0, 2 * time.Second},
			{lost, never, 0, 4 * time.Second}, {lost, never, 0, 8 * time.Second}, {lost, never, 0, 10 * time.Second},
		}},
		{"a welcomed peer caps at two heartbeats, the restore window", backoff.Backoff{}, false, []step{
			{lost, 20 * time.Second, 2 * time.Second, 250 * ms}, {lost, never, 0, 500 * ms}, {lost, never, 0, time.Second},
			{lost, never, 0, 2 * time.Second}, {lost, never, 0, 4 * time.Second}, {lost, never, 0, 4 * time.Second},
		}},
		{"a short session does not reset", backoff.Backoff{}, false, []step{
			{lost, never, 0, 250 * ms}, {lost, never, 0, 500 * ms}, {lost, time.Second, 2 * time.Second, time.Second},
		}},
		{"no-channel restarts the schedule once per outage", backoff.Backoff{}, false, []step{
			{lost, 20 * time.Second, 2 * time.Second, 250 * ms}, {lost, never, 0, 500 * ms}, {lost, never, 0, time.Second},
			{noChan, never, 0, 250 * ms}, {noChan, never, 0, 500 * ms}, {noChan, never, 0, time.Second},
		}},
		{"the origin caps at 1 s", backoff.Backoff{}, true, []step{
			{lost, 20 * time.Second, 2 * time.Second, 250 * ms}, {lost, never, 0, 500 * ms}, {lost, never, 0, time.Second}, {lost, never, 0, time.Second},
		}},
		{"a Max given is kept", backoff.Backoff{Max: 30 * time.Second}, false, []step{
			{lost, time.Second, 2 * time.Second, 250 * ms}, {lost, never, 0, 500 * ms}, {lost, never, 0, time.Second},
			{lost, never, 0, 2 * time.Second}, {lost, never, 0, 4 * time.Second}, {lost, never, 0, 8 * time.Second}, {lost, never, 0, 16 * time.Second},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bo := tc.bo
			bo.Rand = func() float64 { return 0.9999999 }
			r := newReconnect(bo, tc.origin)
			for i, s := range tc.steps {
				got := r.next(s.err, s.lasted, s.heartbeat)
				if got < s.want-ms || got > s.want {
					t.Errorf("step %d: delay %v, want %v", i, got, s.want)
				}
			}
		})
	}
}
