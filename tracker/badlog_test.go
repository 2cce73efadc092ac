package tracker

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/proto"
)

// recorder is a slog.Handler that keeps every record.
type recorder struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (r *recorder) Enabled(context.Context, slog.Level) bool { return true }
func (r *recorder) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.recs = append(r.recs, rec.Clone())
	return nil
}
func (r *recorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *recorder) WithGroup(string) slog.Handler      { return r }

// find returns the attributes of the records with msg at level.
func (r *recorder) find(level slog.Level, msg string) []map[string]any {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []map[string]any
	for _, rec := range r.recs {
		if rec.Level != level || rec.Message != msg {
			continue
		}
		attrs := map[string]any{}
		rec.Attrs(func(a slog.Attr) bool { attrs[a.Key] = a.Value.Any(); return true })
		out = append(out, attrs)
	}
	return out
}

// TestBadMessagesSummarized: every bad message is logged at debug, and
// once per period one info line says how many were dropped from how many
// addresses and which sent most; nothing is said when nothing was
// dropped.
func TestBadMessagesSummarized(t *testing.T) {
	rec := &recorder{}
	srv, base := startServer(t, Config{Logger: slog.New(rec)})
	a, _, err := dial(t, base, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{`{"type":`, `[]`, `{"type":"teleport"}`} {
		a.sendRaw([]byte(m))
	}
	checkFor(t, 5*time.Second, "three errors", func() error {
		if n := len(a.errors()); n != 3 {
			return fmt.Errorf("%d errors", n)
		}
		return nil
	})
	if got := len(rec.find(slog.LevelDebug, "bad message dropped")); got != 3 {
		t.Errorf("%d debug lines, want 3", got)
	}
	if got := rec.find(slog.LevelInfo, "dropped bad client messages"); len(got) != 0 {
		t.Fatalf("summary before its period: %v", got)
	}
	srv.sweep(time.Now().Add(summaryEvery + time.Second))
	got := rec.find(slog.LevelInfo, "dropped bad client messages")
	if len(got) != 1 || got[0]["messages"] != int64(3) || got[0]["addresses"] != int64(1) || got[0]["busiest"] != "127.0.0.1" {
		t.Fatalf("summaries %v, want one of 3 messages from 1 address", got)
	}
	srv.sweep(time.Now().Add(3 * summaryEvery))
	if got := rec.find(slog.LevelInfo, "dropped bad client messages"); len(got) != 1 {
		t.Fatalf("a summary of nothing: %v", got)
	}
}

// TestBadLogBounded: past maxBadIPs addresses, more are counted but not
// remembered.
func TestBadLogBounded(t *testing.T) {
	rec := &recorder{}
	start := time.Now()
	b := newBadLog(slog.New(rec), start)
	for i := 0; i < maxBadIPs+500; i++ {
		b.drop(string(rune('a'+i%26))+time.Duration(i).String(), 0, proto.ErrBadMessage)
	}
	b.drop("busy", 0, proto.ErrBadMessage)
	b.drop("busy", 0, proto.ErrBadMessage)
	if len(b.byIP) > maxBadIPs {
		t.Fatalf("%d addresses remembered", len(b.byIP))
	}
	b.flush(start.Add(summaryEvery))
	got := rec.find(slog.LevelInfo, "dropped bad client messages")
	if len(got) != 1 || got[0]["messages"] != int64(maxBadIPs+502) {
		t.Fatalf("summary %v", got)
	}
}
