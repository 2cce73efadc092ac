package swarm

import (
	"context"
	"errors"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/tracker"
)

// TestGiveUpAfter: a Member with GiveUpAfter ends Run with
// ErrTrackerUnreachable when nothing answers, and with ErrNoChannel when
// the tracker answers without the channel, within the bound and one
// retry, never sooner.
func TestGiveUpAfter(t *testing.T) {
	srv, err := tracker.New(tracker.Config{PublishToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.Run(ctx) }()
	defer func() { cancel(); wg.Wait(); srv.Close(); hs.Close() }()
	down := httptest.NewServer(nil)
	down.Close() // a port nothing listens on

	const bound = 700 * time.Millisecond
	for _, tc := range []struct {
		name, url string
		want      error
	}{
		{"tracker down", down.URL, ErrTrackerUnreachable},
		{"no such channel", hs.URL, ErrNoChannel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := New(Config{TrackerURL: tc.url, Channel: "absent", Handler: &relayer{},
				RTC: rtc.Config{ICEInterfaces: []string{"lo"}}, GiveUpAfter: bound})
			if err != nil {
				t.Fatal(err)
			}
			defer m.Close()
			start := time.Now()
			err = m.Run(t.Context())
			took := time.Since(start)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Run: %v, want %v", err, tc.want)
			}
			if took < bound || took > bound+5*time.Second {
				t.Errorf("gave up after %v, want %v and one attempt more", took, bound)
			}
		})
	}
}
