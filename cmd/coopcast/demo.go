package main

import (
	"context"
	"io"
)

func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("[demo] [--listen ADDR]",
		"Runs the all-in-one demo on one address: a tracker for channel \"demo\".", stderr)
	var lf logFlags
	listen := fs.String("listen", "127.0.0.1:8080", "address to serve on")
	lf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	return runTracker(ctx, []string{"--listen", *listen, "--publish-token", demoToken, "--log-format", lf.format, "--log-level", lf.level}, stdout, stderr)
}

// demoToken is the demo's publish token: the demo's origin runs in the
// same process, and the tracker listens on loopback by default.
const demoToken = "demo-token"
