package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/coopcast/coopcast/loadtest"
)

func runLoadtest(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("loadtest [--mode real|sim] [--peers N] [--duration D] [--bitrate R] [--churn P] [--report FILE]",
		"Runs a flash crowd against coopcast and reports origin egress, offload, startup,\n"+
			"latency, continuity, depth and repair times.\n\n"+
			"--mode real (the default) runs a tracker, an origin and N real pion peers on\n"+
			"loopback in this process: measured, byte-checked, and bounded by this\n"+
			"machine's CPU (at most "+strconv.Itoa(loadtest.MaxRealPeers)+" peers).\n"+
			"--mode sim runs the same forest code as the tracker in a discrete-event\n"+
			"simulator, with modelled links (--net) instead of a network, on simulated\n"+
			"time: up to "+strconv.Itoa(loadtest.MaxSimPeers)+" peers; its figures are a model's, and the report says so.\n\n"+
			"Exits 1 if any peer rebuilt a chunk whose bytes differ from the origin's, or\n"+
			"a media peer's output does not decode, or a --fail-if condition holds.", stderr)
	var (
		lf       logFlags
		mode     = fs.String("mode", "real", "real: pion peers in this process; sim: the discrete-event simulator")
		netModel = fs.String("net", "", "sim: the network model, "+strings.Join(loadtest.NetModelNames(), " or ")+" (default loopback, calibrated against real mode)")
		seed     = fs.Uint64("seed", 1, "sim: seed of the simulator's draws (same seed, same result)")
		ungrace  = fs.Float64("churn-ungraceful", 0, "share of churned peers that vanish without a word (silent sockets, no goodbye); the rest leave and close their connections")
		peers    = fs.Int("peers", 60, "viewers")
		duration = fs.Duration("duration", 30e9, "run length")
		bitrate  = fs.String("bitrate", "500k", "stream bitrate (e.g. 500k, 2M)")
		churn    = fs.Float64("churn", 0, "percent of peers per minute killed and replaced")
		trees    = fs.Int("trees", 4, "stripes and trees (M)")
		k        = fs.Int("k", 3, "stripes that rebuild a chunk")
		upload   = fs.Int64("upload-kbps", 0, "upload each peer offers (default: 4 stripes' worth)")
		jsonOut  = fs.String("report", "", "write the measures as JSON to `FILE` (as peer --report does; --json is the old name)")
		htmlOut  = fs.String("html", "", "write a self-contained report page with charts to FILE")
		joinOver = fs.Duration("join-over", 0, "spread the peers' arrivals over this long (default: 50ms a peer, at least 2s)")
		source   = fs.String("source", "synthetic", "stream: synthetic (byte-checked), testcard, an MP4 file (looped), or - for stdin; with media every peer's output is decoded by ffmpeg. The default is synthetic here, not testcard as in demo and origin, because only synthetic bytes can be checked end to end and sim mode has no media")
		outDir   = fs.String("out-dir", "", "keep each peer's output file here (media sources)")
		scenario = fs.String("scenario", "", "a named scenario: "+strings.Join(loadtest.ScenarioNames(), ", ")+" (flags given override it)")
		arrival  = fs.String("arrival", "", "how the crowd arrives over --join-over: linear (default) or exponential (a surge)")
		arrCSV   = fs.String("arrival-csv", "", "a CSV of join times in seconds, one viewer per row (sets --peers)")
		mix      = fs.String("mix", "", "upload mix, e.g. zero=0.3,low=0.4: shares of viewers relaying nothing and one stripe")
		baseline = fs.String("baseline", "", "http: then serve the same viewers from the origin over plain HTTP for as long, and report both")
		failIf   = fs.String("fail-if", "", "exit 1 if a condition on the measures holds, e.g. 'continuity<0.99,origin_egress_copies>3'")
	)
	fs.StringVar(jsonOut, "json", "", "") // hidden: the old name of --report
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
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	cfg := loadtest.Config{Mode: *mode, Peers: *peers, Duration: *duration, Bitrate: bps, Churn: *churn,
		Trees: *trees, K: *k, UploadKbps: *upload, JoinOver: *joinOver, Source: *source, Stdin: os.Stdin, OutDir: *outDir, Baseline: *baseline,
		Arrival: *arrival, Progress: stderr, ProgressLive: isTerminal(stderr), Logger: log, Net: *netModel, Seed: *seed, ChurnUngraceful: *ungrace}
	if cfg.ZeroUpload, cfg.LowUpload, err = parseMix(*mix); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if *arrCSV != "" {
		if cfg.JoinTimes, err = loadtest.ReadJoinTimes(*arrCSV); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if *scenario != "" {
		// The scenario fills what the command line did not say.
		for name, zero := range map[string]func(){
			"peers": func() { cfg.Peers = 0 }, "duration": func() { cfg.Duration = 0 },
			"bitrate": func() { cfg.Bitrate = 0 }, "churn": func() { cfg.Churn = 0 },
		} {
			if !set[name] {
				zero()
			}
		}
		if cfg, err = loadtest.Apply(*scenario, cfg); err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	conds, err := loadtest.ParseConditions(*failIf)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	kind := "real"
	if cfg.Mode == "sim" {
		kind = "simulated"
	}
	fmt.Fprintf(stdout, "loadtest: %s%d %s peers arriving %s, %v, %d bit/s, churn %.0f%%/min\n",
		scenarioLabel(cfg.Scenario), cfg.Peers, kind, arrivalLabel(cfg), cfg.Duration, cfg.Bitrate, cfg.Churn)
	res, err := loadtest.Run(ctx, cfg)
	if res != nil {
		res.Summary(stdout)
		if *outDir != "" {
			if ents, derr := os.ReadDir(*outDir); derr == nil {
				var size int64
				for _, e := range ents {
					if fi, ierr := e.Info(); ierr == nil && fi.Mode().IsRegular() {
						size += fi.Size()
					}
				}
				fmt.Fprintf(stdout, "wrote %d files to %s (%s in all, each peer's %v run)\n", len(ents), *outDir, sizeLabel(size), cfg.Duration)
			}
		}
		if *jsonOut != "" {
			b, _ := json.MarshalIndent(res, "", "  ")
			if werr := os.WriteFile(*jsonOut, append(b, '\n'), 0o644); werr != nil {
				return fmt.Errorf("--report: %v", werr)
			}
			fmt.Fprintf(stdout, "wrote %s (%s, %v run)\n", *jsonOut, sizeLabel(int64(len(b)+1)), cfg.Duration)
		}
		if *htmlOut != "" {
			var page bytes.Buffer
			if werr := loadtest.WriteHTML(&page, res); werr != nil {
				return fmt.Errorf("--html: %v", werr)
			}
			if werr := os.WriteFile(*htmlOut, page.Bytes(), 0o644); werr != nil {
				return fmt.Errorf("--html: %v", werr)
			}
			fmt.Fprintf(stdout, "wrote %s (%s, %v run)\n", *htmlOut, sizeLabel(int64(page.Len())), cfg.Duration)
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

// parseMix reads "zero=0.3,low=0.4".
func parseMix(s string) (zero, low float64, err error) {
	if s == "" {
		return 0, 0, nil
	}
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		f, perr := strconv.ParseFloat(v, 64)
		if !ok || perr != nil {
			return 0, 0, fmt.Errorf("--mix %q: want zero=SHARE,low=SHARE with shares in [0, 1]", s)
		}
		switch k {
		case "zero":
			zero = f
		case "low":
			low = f
		default:
			return 0, 0, fmt.Errorf("--mix %q: unknown class %q (zero, low)", s, k)
		}
	}
	return zero, low, nil
}

func scenarioLabel(name string) string {
	if name == "" {
		return ""
	}
	return "scenario " + name + ": "
}

func arrivalLabel(c loadtest.Config) string {
	switch {
	case len(c.JoinTimes) > 0:
		return "at the CSV's times"
	case c.Arrival == "exponential":
		return "in a surge"
	}
	return "steadily"
}

// isTerminal reports whether w is a terminal, where live progress may
// rewrite its line.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
