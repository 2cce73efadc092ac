package main

import (
	"errors"
	"flag"
	"io"
	"testing"

	"github.com/coopcast/coopcast/origin"
)

func TestFallbackFlags(t *testing.T) {
	for _, tc := range []struct {
		name       string
		args       []string
		ok         bool
		cap, perIP int64
		allow      int
	}{
		{"defaults", nil, true, 0, 0, 0},
		{"limits", []string{"--fallback-cap", "20M", "--fallback-per-ip", "2M"}, true, 20_000_000, 2_000_000, 0},
		{"off", []string{"--fallback-cap", "off", "--fallback-per-ip", "off"}, true, -1, -1, 0},
		{"origins, repeated and comma-separated", []string{"--allow-origin", "https://a.example,https://b.example", "--allow-origin", "http://127.0.0.1:8080"}, true, 0, 0, 3},
		{"not an origin", []string{"--allow-origin", "a.example"}, false, 0, 0, 0},
		{"bad cap", []string{"--fallback-cap", "lots"}, false, 0, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f fallbackFlags
			fs := flag.NewFlagSet("x", flag.ContinueOnError)
			fs.SetOutput(io.Discard)
			f.register(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			var cfg origin.Config
			err := f.apply(&cfg)
			if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errUsage)) {
				t.Fatalf("apply: %v", err)
			}
			if tc.ok && (cfg.FallbackCap != tc.cap || cfg.FallbackPerIP != tc.perIP || len(cfg.AllowOrigins) != tc.allow) {
				t.Fatalf("cap %d, per IP %d, origins %v", cfg.FallbackCap, cfg.FallbackPerIP, cfg.AllowOrigins)
			}
			if perIPOff := tc.perIP < 0; tc.ok && (cfg.FallbackRequests < 0) != perIPOff {
				t.Fatalf("per IP %d, but requests per IP %v", cfg.FallbackPerIP, cfg.FallbackRequests)
			}
		})
	}
}
