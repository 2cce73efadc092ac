package relay

import (
	"crypto/sha256"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/internal/wire"
)

// linkPair connects two rtc links over loopback.
func linkPair(b *testing.B) (a, z *rtc.Link) {
	b.Helper()
	ep, err := rtc.NewEndpoint(rtc.Config{ICEInterfaces: []string{"lo"}})
	if err != nil {
		b.Fatal(err)
	}
	offers, answers := make(chan rtc.Signal, 1), make(chan rtc.Signal, 1)
	a, err = ep.Dial(func(s rtc.Signal) error { offers <- s; return nil })
	if err != nil {
		b.Fatal(err)
	}
	z, err = ep.Accept(<-offers, func(s rtc.Signal) error { answers <- s; return nil })
	if err != nil {
		b.Fatal(err)
	}
	if err := a.HandleSignal(<-answers); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { a.Close(); z.Close() })
	deadline := time.Now().Add(10 * time.Second)
	for !a.Open() || !z.Open() {
		if time.Now().After(deadline) {
			b.Fatal("link did not open")
		}
		time.Sleep(5 * time.Millisecond)
	}
	return a, z
}

// pump sends b.N fragments through send, pacing on the first link's
// buffer, and waits until done counts them all.
func pump(b *testing.B, first *rtc.Link, done *atomic.Int64, busy func() bool) {
	b.Helper()
	payload := make([]byte, wire.MaxPayload)
	b.SetBytes(int64(len(payload)))
	cpu0 := cpuNow()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for first.Buffered() > 1<<20 || busy() {
			time.Sleep(50 * time.Microsecond)
		}
		msg := wire.AppendFragment(nil, wire.Fragment{Seq: uint32(i), Total: wire.MaxPayload, Payload: payload})
		if err := first.Send(msg); err != nil {
			b.Fatal(err)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	// Partial reliability may abandon a few under load; wait for ≥ 99 %.
	for done.Load() < int64(b.N)*99/100 {
		if time.Now().After(deadline) {
			b.Fatalf("delivered %d of %d", done.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	// CPU, not wall time, is what limits a swarm on one machine.
	b.ReportMetric(float64(cpuNow()-cpu0)/float64(b.N*len(payload)), "cpu-ns/B")
}

// cpuNow is the process's user+system CPU time in nanoseconds.
func cpuNow() int64 {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru.Utime.Nano() + ru.Stime.Nano()
}

// BenchmarkRawDataChannel is the baseline: one pion data channel on
// loopback carrying 16 KiB messages, nothing else done with them.
func BenchmarkRawDataChannel(b *testing.B) {
	a, z := linkPair(b)
	var done atomic.Int64
	z.OnMessage(func([]byte) { done.Add(1) })
	pump(b, a, &done, func() bool { return false })
}

// BenchmarkRelayHop is the same stream through one relaying peer: it
// parses each fragment, checks its SHA-256 (as a peer checks against the
// manifest), copies it and pushes it through a child's bounded Queue onto
// a second data channel. Compare its ns/op with the baseline's: the
// difference is the relay's cost per forwarded message.
func BenchmarkRelayHop(b *testing.B) {
	a, z1 := linkPair(b)
	z2, leaf := linkPair(b)
	q := NewQueue(z2, Config{})
	z2.OnBufferedLow(DefaultLowWater, q.Pump)
	var done atomic.Int64
	leaf.OnMessage(func([]byte) { done.Add(1) })
	var sink [32]byte
	z1.OnMessage(func(m []byte) {
		f, err := wire.ParseFragment(m)
		if err != nil {
			return
		}
		sink = sha256.Sum256(f.Payload)
		q.Push(f.Seq, append([]byte(nil), m...))
	})
	// Pace on the relay too: this measures cost per byte, not what the
	// queue drops when fed faster than it can send.
	pump(b, a, &done, func() bool { return q.Stats().Queued > 512<<10 })
	_ = sink
}
