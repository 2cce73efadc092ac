package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/coopcast/coopcast/loadtest"
)

func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("loadtest [--mode real] [--peers N] [--duration D] [--bitrate R] [--churn P] [--json FILE]",
		"Runs a flash crowd against coopcast on this machine: a tracker, an origin and\n"+
			"N real pion peers on loopback, and reports origin egress, offload, startup,\n"+
			"latency, continuity, depth and repair times. Exits 1 if any peer rebuilt a\n"+
			"chunk whose bytes differ from the origin's, or a media peer's output does not\n"+
			"decode, or a --fail-if condition holds.", stderr)
	var (
		lf       logFlags
		mode     = fs.String("mode", "real", "real: pion peers in this process")
		peers    = fs.Int("peers", 60, "viewers")
		duration = fs.Duration("duration", 30e9, "run length")
		bitrate  = fs.String("bitrate", "500k", "stream bitrate (e.g. 500k, 2M)")
		churn    = fs.Float64("churn", 0, "percent of peers per minute killed without goodbye and replaced")
		trees    = fs.Int("trees", 4, "stripes and trees (M)")
		k        = fs.Int("k", 3, "stripes that rebuild a chunk")
		upload   = fs.Int64("upload-kbps", 0, "upload each peer offers (default: 4 stripes' worth)")
		jsonOut  = fs.String("json", "", "write the measures as JSON to FILE")
		joinOver = fs.Duration("join-over", 0, "spread the peers' arrivals over this long (default: 50ms a peer, at least 2s)")
		source   = fs.String("source", "synthetic", "stream: synthetic (byte-checked), testcard, a fragmented MP4 file (looped), or - for stdin; with media every peer's output is decoded by ffmpeg")
		outDir   = fs.String("out-dir", "", "keep each peer's output file here (media sources)")
		baseline = fs.String("baseline", "", "http: then serve the same viewers from the origin over plain HTTP for as long, and report both")
		failIf   = fs.String("fail-if", "", "exit 1 if a condition on the measures holds, e.g. 'continuity<0.99,origin_egress_copies>3'")
	)
	lf.register(fs)
	if err := parse(fs, args); err != nil {
		return err
	}
	if lf.level == "info" {
		lf.level = "error" // a thousand peers' info logs drown the report
	}
	log, err := lf.logger(stderr)
	if err != nil {
		return err
	}
	bps, err := parseBitrate(*bitrate)
	if err != nil {
		return fmt.Errorf("%w: --bitrate: %v", errUsage, err)
	}
	cfg := loadtest.Config{Mode: *mode, Peers: *peers, Duration: *duration, Bitrate: bps, Churn: *churn,
		Trees: *trees, K: *k, UploadKbps: *upload, JoinOver: *joinOver, Source: *source, Stdin: os.Stdin, OutDir: *outDir, Baseline: *baseline,
		Progress: stdout, Logger: log}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	conds, err := loadtest.ParseConditions(*failIf)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	fmt.Fprintf(stdout, "loadtest: %d real peers, %v, %s, churn %.0f%%/min\n", *peers, *duration, *bitrate, *churn)
	res, err := loadtest.Run(ctx, cfg)
	if res != nil {
		res.Summary(stdout)
		if *jsonOut != "" {
			b, _ := json.MarshalIndent(res, "", "  ")
			if werr := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); werr != nil {
				return fmt.Errorf("--json: %v", werr)
			}
		}
	}
	if err == nil || errors.Is(err, context.Canceled) {
		if res != nil {
			if failed := loadtest.Failed(res, conds); len(failed) > 0 {
				return fmt.Errorf("--fail-if met: %s", strings.Join(failed, "; "))
			}
		}
		if err != nil {
			return nil
		}
	}
	return err
}
