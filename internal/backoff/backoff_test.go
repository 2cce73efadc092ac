package backoff

import (
	"testing"
	"time"
)

const ms = time.Millisecond

// fixed returns a Rand that always answers f.
func fixed(f float64) func() float64 { return func() float64 { return f } }

func TestScheduleBounds(t *testing.T) {
	// Upper bounds of the default schedule: 250 ms doubling, capped at 10 s.
	hi := []time.Duration{250 * ms, 500 * ms, 1000 * ms, 2000 * ms, 4000 * ms, 8000 * ms, 10000 * ms, 10000 * ms, 10000 * ms}
	for _, tc := range []struct {
		name string
		rand float64
		want func(d time.Duration) time.Duration
	}{
		{"no jitter drawn: half of each step", 0, func(d time.Duration) time.Duration { return d / 2 }},
		{"middle", 0.5, func(d time.Duration) time.Duration { return d/2 + d/4 }},
		{"most jitter", 0.999999, func(d time.Duration) time.Duration { return d }},
		{"bad rand (1) is taken as 0", 1, func(d time.Duration) time.Duration { return d / 2 }},
		{"bad rand (-1) is taken as 0", -1, func(d time.Duration) time.Duration { return d / 2 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := Backoff{Rand: fixed(tc.rand)}
			for i, h := range hi {
				got := b.Next()
				if want := tc.want(h); got < want-ms || got > want {
					t.Errorf("delay %d = %v, want %v (step %v)", i, got, want, h)
				}
			}
			if b.Attempts() != len(hi) {
				t.Errorf("Attempts = %d, want %d", b.Attempts(), len(hi))
			}
		})
	}
}

func TestScheduleNeverOverflows(t *testing.T) {
	b := Backoff{Min: time.Second, Max: time.Hour, Rand: fixed(0.999)}
	for i := range 200 {
		d := b.Next()
		if d <= 0 || d > time.Hour {
			t.Fatalf("delay %d = %v, want in (0, 1h]", i, d)
		}
	}
}

func TestMaxBelowMin(t *testing.T) {
	b := Backoff{Min: 2 * time.Second, Max: time.Second, Rand: fixed(0)}
	if d := b.Next(); d != time.Second {
		t.Errorf("Next = %v, want the cap taken as Min (2 s) and half of it drawn", d)
	}
}

// TestJitterSpreads: with the package's own randomness, delays cover
// their whole range [d/2, d] rather than sitting at one point, so clients
// that lost a tracker together come back apart.
func TestJitterSpreads(t *testing.T) {
	lo, hi := time.Hour, time.Duration(0)
	for range 2000 {
		b := Backoff{}
		b.Next()
		b.Next()
		d := b.Next() // the third step: 1 s
		lo, hi = min(lo, d), max(hi, d)
	}
	if lo < 500*ms || hi > time.Second || lo > 550*ms || hi < 950*ms {
		t.Errorf("third delays span [%v, %v], want within [500ms, 1s] and covering most of it", lo, hi)
	}
}

func TestReset(t *testing.T) {
	for _, tc := range []struct {
		name   string
		b      Backoff
		lasted time.Duration
		reset  bool
	}{
		{"short session keeps growing", Backoff{}, 9 * time.Second, false},
		{"session as long as the cap resets", Backoff{}, 10 * time.Second, true},
		{"custom Lasted", Backoff{Lasted: time.Second}, time.Second, true},
		{"custom Lasted, shorter", Backoff{Lasted: time.Second}, time.Second - ms, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := tc.b
			b.Rand = fixed(0)
			for range 4 {
				b.Next()
			}
			b.Done(tc.lasted)
			got := b.Next()
			want := 2 * time.Second // step 4: 4 s, half drawn
			if tc.reset {
				want = 125 * ms
			}
			if got != want {
				t.Errorf("after Done(%v): Next = %v, want %v", tc.lasted, got, want)
			}
		})
	}
}

func TestOutage(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	var o Outage
	if e := o.Up(at(0)); e != None {
		t.Fatalf("first Up = %v, want None", e)
	}
	steps := []struct {
		at     float64
		failed bool
		want   Event
	}{
		{1, true, Lost},
		{1.2, true, None},
		{20, true, None},
		{31, true, StillDown},
		{40, true, None},
		{61.5, true, StillDown},
		{62, false, Back},
		{63, false, None},
		{70, true, Lost},
		{71, false, Back},
	}
	for _, s := range steps {
		var e Event
		if s.failed {
			e = o.Failed(at(s.at))
		} else {
			e = o.Up(at(s.at))
		}
		if e != s.want {
			t.Errorf("at %vs (failed %v): %v, want %v", s.at, s.failed, e, s.want)
		}
		if s.at == 62 {
			if d := o.Down(at(100)); d != 61*time.Second {
				t.Errorf("the outage that ended at 62 s lasted %v, want 61s", d)
			}
			if n := o.Failures(); n != 6 {
				t.Errorf("failures in it = %d, want 6", n)
			}
		}
	}
	if d := o.Down(at(80)); d != time.Second || o.Failures() != 1 {
		t.Errorf("last outage %v with %d failures, want 1s and 1", d, o.Failures())
	}
}
