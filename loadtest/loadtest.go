package loadtest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/internal/stack"
	"github.com/coopcast/coopcast/origin"
	"github.com/coopcast/coopcast/peer"
	"github.com/coopcast/coopcast/tracker"
	"github.com/pion/transport/v5"
	"github.com/pion/transport/v5/stdnet"
)

// Config is a scenario. Zero values are defaults.
type Config struct {
	// Mode is "real" (the default: pion peers in this process) or "sim"
	// (the discrete-event simulator: the same forest code, modelled links).
	Mode string
	// Peers is how many viewers. Default 60. At most MaxRealPeers in real
	// mode, MaxSimPeers in sim mode.
	Peers int
	// Duration is the run's length. Default 30 s.
	Duration time.Duration
	// Bitrate of the stream, bits/s. Default 500k.
	Bitrate int64
	// Churn is the percentage of peers per minute killed and replaced by
	// new ones. Default 0.
	Churn float64
	// ChurnUngraceful is the share of churned peers that vanish without a
	// word (links and tracker connection silent: children notice after the
	// silence timeout, the tracker after missed heartbeats); the others
	// leave (their connections close and the tracker repairs at once).
	// Default 0. In real mode such a peer's UDP sockets, tracker
	// connection (through a proxy) and HTTP fetches go silent while its
	// process runs on, as when a machine loses its network.
	ChurnUngraceful float64
	// Trees and K shape the stripes. Defaults 4 and 3.
	Trees, K int
	// UploadKbps each peer offers. Default 4 × the stripe rate (enough to
	// feed four children).
	UploadKbps int64
	// JoinOver spreads the peers' arrivals over this time. Default 50 ms
	// a peer, at least 2 s: 200 viewers in 10 s. Faster on this 2-core
	// machine, the DTLS handshakes of the whole crowd at once saturate it
	// and the run measures the box, not coopcast (docs/BENCHMARKS.md).
	// In sim mode the default stops at 10 s (a crowd of any size arrives
	// in 10 s) and at half the run.
	JoinOver time.Duration
	// ChunkInterval is the synthetic source's chunk duration. Default 500 ms.
	ChunkInterval time.Duration
	// Source is "synthetic" (the default), "testcard", "-" (a live fMP4
	// on Stdin) or the path of a fragmented MP4, looped. With media, each
	// peer's output is decoded with ffmpeg at the end (OutDir).
	Source string
	Stdin  io.Reader
	// OutDir keeps every peer's output file for a media source. Empty: a
	// temporary directory, removed after decoding.
	OutDir string
	// Scenario names the preset the config came from (see Apply).
	Scenario string
	// Arrival shapes the crowd's arrival over JoinOver: "linear" (the
	// default) or "exponential" (a surge). JoinTimes, if set, gives each
	// viewer's join time instead (from --arrival-csv); Peers is its length.
	Arrival   string
	JoinTimes []time.Duration
	// ZeroUpload and LowUpload are the shares of viewers that relay
	// nothing and that relay one stripe; the rest offer UploadKbps.
	ZeroUpload, LowUpload float64
	// Baseline "http": after the swarm run, the same number of viewers
	// fetch the stream straight from the origin over HTTP for as long, and
	// the report sets the two side by side. Empty: no baseline.
	Baseline string
	// OriginSlots is the origin's children per tree. Default 2.
	OriginSlots int
	// Net names the simulator's network model (NetModels): "loopback"
	// (the default, calibrated against real mode) or "internet". Sim only.
	Net string
	// Seed seeds the simulator's draws: the same seed and config give the
	// same result. Default 1. Sim only.
	Seed uint64
	// Progress receives the run's live figures (peers, offload,
	// continuity so far): a line every 5 s, or, with ProgressLive, one line
	// rewritten in place (\r) once a second, for a terminal. Nil: none.
	Progress     io.Writer
	ProgressLive bool
	Logger       *slog.Logger
}

// MaxRealPeers is what one 2-core machine carries in real mode; beyond it
// use the simulator.
const MaxRealPeers = 400

// MaxSimPeers bounds a simulated crowd: two million peers take about
// 4 GB (docs/BENCHMARKS.md).
const MaxSimPeers = 2_000_000

func (c Config) withDefaults() Config {
	if c.Mode == "" {
		c.Mode = "real"
	}
	if c.Peers == 0 {
		c.Peers = 60
	}
	if c.Duration == 0 {
		c.Duration = 30 * time.Second
	}
	if c.Bitrate == 0 {
		c.Bitrate = 500_000
	}
	if c.Trees == 0 {
		c.Trees = 4
	}
	if c.K == 0 {
		c.K = min(3, c.Trees)
	}
	if c.UploadKbps == 0 {
		c.UploadKbps = 4 * (c.Bitrate/int64(c.K) + 999) / 1000
	}
	if c.JoinOver == 0 {
		c.JoinOver = max(2*time.Second, time.Duration(c.Peers)*50*time.Millisecond)
		if c.Mode == "sim" {
			c.JoinOver = min(c.JoinOver, 10*time.Second, max(c.Duration/2, time.Second))
		}
	}
	if c.ChunkInterval == 0 {
		c.ChunkInterval = origin.DefaultChunkInterval
	}
	if c.OriginSlots == 0 {
		c.OriginSlots = 2
	}
	if c.Source == "" {
		c.Source = "synthetic"
	}
	if c.Arrival == "" {
		c.Arrival = "linear"
	}
	if len(c.JoinTimes) > 0 {
		c.Peers = len(c.JoinTimes)
		c.JoinOver = c.JoinTimes[len(c.JoinTimes)-1]
	}
	if c.Mode == "sim" && c.Net == "" {
		c.Net = "loopback"
	}
	if c.Seed == 0 {
		c.Seed = 1
	}
	return c
}

// Validate names the problem with an impossible scenario before anything
// starts.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Mode != "real" && c.Mode != "sim":
		return fmt.Errorf("--mode must be real or sim, got %q", c.Mode)
	case c.Mode == "real" && (c.Peers < 1 || c.Peers > MaxRealPeers):
		return fmt.Errorf("--peers must be in [1, %d] in real mode (this machine's budget; use --mode sim for more), got %d", MaxRealPeers, c.Peers)
	case c.Mode == "sim" && (c.Peers < 1 || c.Peers > MaxSimPeers):
		return fmt.Errorf("--peers must be in [1, %d] in sim mode (MaxSimPeers: about 2 KB each), got %d", MaxSimPeers, c.Peers)
	case c.Mode == "sim" && c.Source != "synthetic":
		return fmt.Errorf("--source must be synthetic in sim mode (the simulator moves chunk sizes, not media), got %q", c.Source)
	case c.Mode == "sim" && c.Baseline != "":
		return fmt.Errorf("--baseline http runs a real HTTP origin: real mode only")
	case c.Mode == "sim" && NetModels[c.Net].Name == "":
		return fmt.Errorf("--net must be one of %s, got %q", strings.Join(NetModelNames(), ", "), c.Net)
	case c.Mode == "real" && c.Net != "":
		return fmt.Errorf("--net %q is a simulator model: use it with --mode sim", c.Net)
	case c.Duration > 24*time.Hour:
		return fmt.Errorf("--duration must be at most 24h, got %v", c.Duration)
	case c.ChunkInterval < 10*time.Millisecond || c.ChunkInterval > 10*time.Second:
		return fmt.Errorf("the chunk interval must be between 10ms and 10s, got %v", c.ChunkInterval)
	case c.ChurnUngraceful < 0 || c.ChurnUngraceful > 1:
		return fmt.Errorf("--churn-ungraceful must be a share in [0, 1], got %v", c.ChurnUngraceful)
	case c.Duration < 2*time.Second:
		return fmt.Errorf("--duration must be at least 2s, got %v", c.Duration)
	case c.Bitrate < 8_000 || c.Bitrate > 20_000_000:
		return fmt.Errorf("--bitrate must be between 8k and 20M, got %d", c.Bitrate)
	case c.Churn < 0 || c.Churn > 100:
		return fmt.Errorf("--churn must be a percentage per minute in [0, 100], got %v", c.Churn)
	case c.Trees < 1 || c.Trees > 16:
		return fmt.Errorf("--trees must be in [1, 16], got %d", c.Trees)
	case c.K < 1 || c.K > c.Trees:
		return fmt.Errorf("--k must be in [1, trees=%d], got %d", c.Trees, c.K)
	case c.UploadKbps < 0:
		return fmt.Errorf("--upload-kbps must be ≥ 0, got %d", c.UploadKbps)
	case c.Arrival != "linear" && c.Arrival != "exponential":
		return fmt.Errorf("--arrival must be linear or exponential, got %q", c.Arrival)
	case c.ZeroUpload < 0 || c.LowUpload < 0 || c.ZeroUpload+c.LowUpload > 1:
		return fmt.Errorf("--mix shares must be ≥ 0 and add up to at most 1, got zero=%v low=%v", c.ZeroUpload, c.LowUpload)
	case c.JoinOver > c.Duration:
		return fmt.Errorf("the crowd arrives over %v but the run lasts %v: lengthen --duration", c.JoinOver, c.Duration)
	case c.Baseline != "" && c.Baseline != "http":
		return fmt.Errorf("--baseline must be http (or empty), got %q", c.Baseline)
	}
	return nil
}

// Result is one run's measures, with DESIGN.md's names.
type Result struct {
	Scenario           Scenario `json:"scenario"`
	PeersTotal         int      `json:"peers_total"`
	OriginEgressCopies float64  `json:"origin_egress_copies"`
	OffloadRatio       float64  `json:"offload_ratio"`
	StartupP50         float64  `json:"startup_ms_p50"`
	StartupP95         float64  `json:"startup_ms_p95"`
	StartupP99         float64  `json:"startup_ms_p99"`
	LatencyP50         float64  `json:"latency_ms_p50"`
	LatencyP95         float64  `json:"latency_ms_p95"`
	LatencyP99         float64  `json:"latency_ms_p99"`
	Continuity         float64  `json:"continuity"`
	ContinuityMin      float64  `json:"continuity_min"`
	// ContinuityLived is continuity over peers alive at least 10 s.
	ContinuityLived float64 `json:"continuity_alive_10s"`
	DepthMax        []int   `json:"depth_max"`
	RepairP50       float64 `json:"repair_ms_p50"`
	RepairP95       float64 `json:"repair_ms_p95"`
	RepairP99       float64 `json:"repair_ms_p99"`
	Repairs         int     `json:"repairs"`
	RelayBytes      uint64  `json:"relay_bytes"`
	OriginRTCBytes  uint64  `json:"origin_rtc_bytes"`
	OriginHTTPBytes uint64  `json:"origin_http_bytes"`
	StreamBytes     uint64  `json:"stream_bytes"`
	ChunksGood      int64   `json:"chunks_identical"`
	ChunksCorrupt   int64   `json:"chunks_corrupt"`
	// Complaints: children reporting a silent parent; HTTPFetches: the
	// peers' fallback fetches from the origin.
	Complaints  uint64 `json:"complaints"`
	HTTPFetches uint64 `json:"http_fetches"`
	Killed      int    `json:"peers_killed"`
	// For a media source: peers whose output ffmpeg decoded without an
	// error, and those it did not (with the first errors).
	OutputsDecoded int      `json:"outputs_decoded,omitempty"`
	OutputsFailed  int      `json:"outputs_failed,omitempty"`
	DecodeErrors   []string `json:"decode_errors,omitempty"`
	// Baseline is the plain-HTTP origin serving the same viewers.
	Baseline *Baseline `json:"baseline,omitempty"`
	// For the report: a sample a second; startup, latency and repair
	// times as percentiles 0..100; how many peers sit at each depth, per
	// tree (from the tracker's forest at the end).
	Series        []Sample  `json:"series,omitempty"`
	StartupCDF    []float64 `json:"startup_ms_cdf,omitempty"`
	LatencyCDF    []float64 `json:"latency_ms_cdf,omitempty"`
	RepairCDF     []float64 `json:"repair_ms_cdf,omitempty"`
	DepthHist     [][]int   `json:"depth_histogram,omitempty"`
	CPUPerPeerPct float64   `json:"cpu_per_peer_pct"`
	CPUTotalPct   float64   `json:"cpu_total_pct"`
	WallSeconds   float64   `json:"wall_s"`
	// MaxRSSMB is the process's peak resident memory (getrusage).
	MaxRSSMB float64 `json:"max_rss_mb"`
	// Interrupted: the run was stopped (Ctrl-C) before its end; the
	// measures cover what ran.
	Interrupted bool `json:"interrupted,omitempty"`
	// Sim is set when the simulator produced the result: every measure
	// above then comes from its model, none from a network.
	Sim *SimInfo `json:"sim,omitempty"`
}

// Scenario echoes the parameters in the report.
type Scenario struct {
	Mode       string  `json:"mode"`
	Peers      int     `json:"peers"`
	DurationS  float64 `json:"duration_s"`
	Bitrate    int64   `json:"bitrate"`
	Churn      float64 `json:"churn_pct_per_min"`
	Trees      int     `json:"trees"`
	K          int     `json:"k"`
	UploadKbps int64   `json:"upload_kbps"`
	Source     string  `json:"source"`
	Name       string  `json:"scenario,omitempty"`
	Arrival    string  `json:"arrival"`
	JoinOverS  float64 `json:"join_over_s"`
	ZeroUpload float64 `json:"zero_upload_share,omitempty"`
	LowUpload  float64 `json:"low_upload_share,omitempty"`
	// ChurnUngraceful is the share of churned peers that vanish silently.
	ChurnUngraceful float64 `json:"churn_ungraceful,omitempty"`
	ChunkIntervalS  float64 `json:"chunk_interval_s"`
	OriginSlots     int     `json:"origin_slots"`
	// Net is the simulator's network model (sim mode).
	Net string `json:"net,omitempty"`
}

// scenario echoes a defaulted config.
func (c Config) scenario() Scenario {
	return Scenario{Mode: c.Mode, Peers: c.Peers, DurationS: c.Duration.Seconds(), Bitrate: c.Bitrate,
		Churn: c.Churn, Trees: c.Trees, K: c.K, UploadKbps: c.UploadKbps, Source: c.Source,
		Name: c.Scenario, Arrival: c.Arrival, JoinOverS: c.JoinOver.Seconds(), ZeroUpload: c.ZeroUpload, LowUpload: c.LowUpload,
		ChurnUngraceful: c.ChurnUngraceful, ChunkIntervalS: c.ChunkInterval.Seconds(), OriginSlots: c.OriginSlots, Net: c.Net}
}

// ErrCorrupt: some peer rebuilt a chunk whose bytes differ from the
// origin's.
var ErrCorrupt = errors.New("loadtest: a peer rebuilt a chunk that differs from the origin's")

// ErrUndecodable: ffmpeg reported errors decoding some peer's output.
var ErrUndecodable = errors.New("loadtest: a peer's output does not decode cleanly")

// recording remembers the SHA-256 of every chunk its source yields, so
// peers' chunks of a real media stream can be checked byte for byte.
type recording struct {
	origin.Source
	mu   sync.Mutex
	sums map[uint32][32]byte
	seq  uint32
}

func (s *recording) Next(ctx context.Context) (origin.Chunk, error) {
	c, err := s.Source.Next(ctx)
	if err == nil {
		s.mu.Lock()
		s.sums[s.seq] = sha256.Sum256(c.Data)
		s.seq++
		s.mu.Unlock()
	}
	return c, err
}

func (s *recording) same(seq uint32, data []byte) bool {
	s.mu.Lock()
	want, ok := s.sums[seq]
	s.mu.Unlock()
	return ok && want == sha256.Sum256(data)
}

// Describe passes on the media description of the source it wraps.
func (s *recording) Describe() *proto.Media {
	if d, ok := s.Source.(origin.Describer); ok {
		return d.Describe()
	}
	return nil
}

type runner struct {
	cfg     Config
	log     *slog.Logger
	url     string
	ctx     context.Context
	mu      sync.Mutex // guards peers
	peers   []*vpeer
	good    atomic.Int64
	corrupt atomic.Int64
	rtc     rtc.Config
	rec     *recording // a media source's chunk sums; nil: synthetic
	mix     *rand.Rand // draws each viewer's upload class; guarded by mu
	origin  *origin.Origin
	series  []Sample // one a second, for the report
	prog    *progressLine
	// With ChurnUngraceful: the tracker's address, for each peer's
	// vanisher, and the HTTP transport their fallback fetches share.
	trackerAddr string
	httpT       *http.Transport
	// cumulative played/due at the last sample, for per-second continuity
	lastPlayed, lastDue float64
}

// Sample is the swarm's state at one second of the run.
type Sample struct {
	T float64 `json:"t_s"`
	// Peers alive; OriginMbps the origin's egress (WebRTC + HTTP) over the
	// last second; Continuity the share of chunks due in that second that
	// played on time (1 when none were due).
	Peers      int     `json:"peers"`
	OriginMbps float64 `json:"origin_mbps"`
	Continuity float64 `json:"continuity"`
	originB    uint64
}

type vpeer struct {
	p      *peer.Peer
	cancel context.CancelFunc
	done   chan struct{}
	out    *os.File // a media peer's output
	joined time.Time
	left   time.Time
	killed bool
	final  peer.Report
	vanish *vanisher // nil unless some churned peers vanish
}

// Run runs the scenario and returns its measures. It returns ErrCorrupt
// (with the result) if any rebuilt chunk differed from the origin's.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	autoUpload := cfg.UploadKbps == 0
	cfg = cfg.withDefaults()
	if cfg.Mode == "sim" {
		return runSim(ctx, cfg)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	var (
		src origin.Source
		err error
	)
	bitrate := cfg.Bitrate
	if cfg.Source == "synthetic" {
		if src, err = origin.NewSynthetic(cfg.Bitrate, cfg.ChunkInterval); err != nil {
			return nil, err
		}
	} else {
		var raw origin.Source
		if raw, bitrate, err = origin.Open(cfg.Source, true, 0, 0, cfg.Stdin); err != nil {
			return nil, err
		}
		src = &recording{Source: raw, sums: map[uint32][32]byte{}}
		cfg.Bitrate = bitrate
		if autoUpload {
			cfg.UploadKbps = 4 * (bitrate/int64(cfg.K) + 999) / 1000
		}
		if cfg.OutDir == "" {
			dir, err := os.MkdirTemp("", "coopcast-loadtest-")
			if err != nil {
				return nil, err
			}
			defer os.RemoveAll(dir)
			cfg.OutDir = dir
		} else if err := os.MkdirAll(cfg.OutDir, 0o755); err != nil {
			return nil, err
		}
	}
	rc := rtc.Config{ICEInterfaces: []string{"lo"}}
	st, err := stack.Start(ctx, stack.Config{PublishToken: "loadtest", Logger: log,
		// Every peer connects from loopback: no per-address limits.
		Tracker: tracker.Config{JoinsPerIP: 1e6, JoinBurst: 1e6, MaxConnsPerIP: 1 << 20, Forest: forest.Config{OriginSlots: cfg.OriginSlots}},
		Origin: origin.Config{Channel: "loadtest", Source: src, Trees: cfg.Trees, K: cfg.K, Bitrate: bitrate, RTC: rc,
			// Every peer shares the loopback address, and the run measures
			// what the origin would have to serve: no per-address budget, no cap.
			FallbackPerIP: -1, FallbackRequests: -1, FallbackCap: -1}})
	if err != nil {
		return nil, err
	}
	defer st.Close()
	srv, o, url := st.Tracker, st.Origin, st.URL()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r := &runner{cfg: cfg, log: log, url: url, ctx: ctx, rtc: rc, mix: rand.New(rand.NewPCG(1, 2)), origin: o,
		prog: newProgressLine(cfg, time.Now()), trackerAddr: strings.TrimPrefix(url, "http://")}
	if cfg.ChurnUngraceful > 0 {
		r.httpT = &http.Transport{MaxIdleConnsPerHost: 8, IdleConnTimeout: 30 * time.Second}
		defer r.httpT.CloseIdleConnections()
	}
	if rec, ok := src.(*recording); ok {
		r.rec = rec
	}
	start := time.Now()
	cpu0 := cpuTime()
	// A sample a second for the report, from the start to the end of the
	// swarm run, crowd arrival included.
	sampling, stopSampling := context.WithCancel(ctx)
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sampling.Done():
				return
			case <-t.C:
				r.sample(time.Since(start))
			}
		}
	}()
	// The origin publishes before the crowd arrives (300 ms).
	for _, at := range cfg.arrivals() {
		if !sleep(ctx, time.Until(start.Add(300*time.Millisecond+at))) {
			break
		}
		r.join()
	}
	r.churnAndWait(start, cfg.Duration, srv)
	stopSampling()
	<-sampled
	r.prog.end()
	wall := time.Since(start)
	cpu := cpuTime() - cpu0
	res := r.collect(o.Stats(), srv)
	res.Interrupted = ctx.Err() != nil
	res.WallSeconds = wall.Seconds()
	res.CPUTotalPct = 100 * cpu.Seconds() / wall.Seconds()
	res.CPUPerPeerPct = res.CPUTotalPct / float64(cfg.Peers)
	if cfg.Baseline == "http" && ctx.Err() == nil {
		r.stopAll() // the swarm's viewers leave; the origin streams on
		if cfg.Progress != nil {
			fmt.Fprintf(cfg.Progress, "baseline: %d viewers fetching from the origin over HTTP for %v\n", cfg.Peers, cfg.Duration)
		}
		res.Baseline = runBaseline(ctx, o, url+"/fallback/loadtest", cfg.Peers, cfg.Duration, 100*time.Millisecond, 2*time.Second)
	}

	cancel()
	r.stopAll()
	st.Close()
	res.MaxRSSMB = maxRSSMB()
	if r.rec != nil {
		r.decodeOutputs(res)
	}
	if res.ChunksCorrupt > 0 {
		return res, ErrCorrupt
	}
	if res.OutputsFailed > 0 {
		return res, ErrUndecodable
	}
	return res, nil
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func (r *runner) join() {
	cfg := r.cfg
	upload := cfg.UploadKbps
	r.mu.Lock()
	switch u := r.mix.Float64(); {
	case u < cfg.ZeroUpload:
		upload = 0
	case u < cfg.ZeroUpload+cfg.LowUpload:
		upload = (cfg.Bitrate/int64(cfg.K) + 999) / 1000 // one stripe
	}
	r.mu.Unlock()
	var vn *vanisher
	if cfg.ChurnUngraceful > 0 {
		var err error
		if vn, err = newVanisher(r.trackerAddr); err != nil {
			r.log.Error("vanisher", "err", err)
			return
		}
	}
	pc := peer.Config{TrackerURL: r.url, Channel: "loadtest", UploadKbps: upload, RTC: r.rtc,
		OnChunk: func(seq uint32, data []byte) {
			var ok bool
			if r.rec != nil {
				ok = r.rec.same(seq, data)
			} else {
				ok = bytes.Equal(data, origin.SyntheticChunk(seq, cfg.Bitrate, cfg.ChunkInterval))
			}
			if ok {
				r.good.Add(1)
			} else {
				r.corrupt.Add(1)
			}
		}}
	r.mu.Lock()
	n := len(r.peers)
	r.mu.Unlock()
	if vn != nil {
		pc.TrackerURL = vn.url
		pc.RTC.Net = vn.net
		pc.HTTP = &http.Client{Timeout: 5 * time.Second, Transport: vn.roundTripper(r.httpT)}
	}
	var out *os.File
	if r.rec != nil {
		var err error
		if out, err = os.Create(filepath.Join(cfg.OutDir, fmt.Sprintf("peer-%03d.mp4", n))); err != nil {
			r.log.Error("peer output", "err", err)
			vn.close()
			return
		}
		pc.Out = out
	}
	p, err := peer.New(pc)
	if err != nil {
		r.log.Error("new peer", "err", err)
		vn.close()
		return
	}
	ctx, cancel := context.WithCancel(r.ctx)
	v := &vpeer{p: p, cancel: cancel, done: make(chan struct{}), joined: time.Now(), out: out, vanish: vn}
	r.mu.Lock()
	r.peers = append(r.peers, v)
	r.mu.Unlock()
	go func() { defer close(v.done); p.Run(ctx) }()
}

// churnAndWait runs until the duration is over, killing and replacing
// peers at the churn rate.
func (r *runner) churnAndWait(start time.Time, d time.Duration, srv *tracker.Server) {
	rng := rand.New(rand.NewPCG(uint64(start.UnixNano()), 7))
	tick := 100 * time.Millisecond
	perTick := r.cfg.Churn / 100 * float64(r.cfg.Peers) / (float64(time.Minute) / float64(tick))
	debt := 0.0
	for time.Since(start) < d {
		if !sleep(r.ctx, tick) {
			return
		}
		// No churn while the crowd is still arriving.
		if time.Since(start) > r.cfg.JoinOver+time.Second {
			debt += perTick
		}
		for ; debt >= 1; debt-- {
			r.mu.Lock()
			var alive []*vpeer
			for _, v := range r.peers {
				if !v.killed {
					alive = append(alive, v)
				}
			}
			r.mu.Unlock()
			if len(alive) == 0 {
				break
			}
			v := alive[rng.IntN(len(alive))]
			r.kill(v, rng.Float64() < r.cfg.ChurnUngraceful)
			r.join()
		}
	}
}

// sample records one second of the run.
func (r *runner) sample(el time.Duration) {
	type seen struct {
		p      *peer.Peer
		killed bool
		final  peer.Report
	}
	r.mu.Lock()
	peers := make([]seen, len(r.peers))
	for i, v := range r.peers {
		peers[i] = seen{v.p, v.killed, v.final}
	}
	r.mu.Unlock()
	var played, due float64
	s := Sample{T: math.Round(el.Seconds()*10) / 10}
	for _, v := range peers {
		rep := v.final
		if !v.killed {
			rep = v.p.Report()
			s.Peers++
		}
		d := float64(rep.ChunksPlayed + rep.ChunksMissed)
		due += d
		played += rep.Continuity * d
	}
	s.Continuity = 1
	if dd := due - r.lastDue; dd > 0 {
		s.Continuity = math.Max(0, math.Min(1, (played-r.lastPlayed)/dd))
	}
	r.lastPlayed, r.lastDue = played, due
	st := r.origin.Stats()
	s.originB = st.RTCBytes + st.HTTPBytes
	prev, prevT := uint64(0), 0.0
	if n := len(r.series); n > 0 {
		prev, prevT = r.series[n-1].originB, r.series[n-1].T
	}
	if dt := s.T - prevT; dt > 0 {
		s.OriginMbps = round(float64(s.originB-prev) * 8 / dt / 1e6)
	}
	r.series = append(r.series, s)
	if r.prog.due(time.Now()) {
		offload := 1.0
		if st.Chunks > 0 && due > 0 {
			offload = 1 - float64(s.originB)/(due*float64(st.ChunkBytes)/float64(st.Chunks))
		}
		r.prog.show(time.Now(), el.Seconds()/r.cfg.Duration.Seconds(), fmt.Sprintf("%5.1f/%.0f s  peers %d  offload %.4f  continuity %.4f  chunks ok %d  corrupt %d",
			el.Seconds(), r.cfg.Duration.Seconds(), s.Peers, offload, ratio(played, due), r.good.Load(), r.corrupt.Load()))
	}
}

// progressLine shows a run's live figures: on a terminal (live) one line
// rewritten in place once a second, with a bar; otherwise a plain line
// every 5 s.
type progressLine struct {
	w     io.Writer
	live  bool
	next  time.Time
	width int // of the live line last shown
}

func newProgressLine(cfg Config, start time.Time) *progressLine {
	p := &progressLine{w: cfg.Progress, live: cfg.ProgressLive, next: start.Add(5 * time.Second)}
	if p.live {
		p.next = start.Add(time.Second)
	}
	return p
}

// due reports whether a line is due at now (so that figures are only
// computed when they will be shown).
func (p *progressLine) due(now time.Time) bool { return p.w != nil && !now.Before(p.next) }

// show prints figures if a line is due; done is the share of the run
// behind.
func (p *progressLine) show(now time.Time, done float64, figures string) {
	if !p.due(now) {
		return
	}
	if !p.live {
		p.next = now.Add(5 * time.Second)
		fmt.Fprintln(p.w, figures)
		return
	}
	p.next = now.Add(time.Second)
	n := int(math.Max(0, math.Min(1, done)) * 20)
	line := fmt.Sprintf("[%s%s] %s", strings.Repeat("#", n), strings.Repeat(".", 20-n), figures)
	fmt.Fprintf(p.w, "\r%s%s", line, strings.Repeat(" ", max(0, p.width-len(line))))
	p.width = len(line)
}

// end ends a live line, so that what follows starts on a line of its own.
func (p *progressLine) end() {
	if p.live && p.width > 0 {
		fmt.Fprintln(p.w)
		p.width = 0
	}
}

// kill stops a peer without a goodbye: its links and tracker connection
// just close (the tracker repairs at once). With vanish, they go silent
// instead and the peer runs on, cut off, until the end of the run.
func (r *runner) kill(v *vpeer, vanish bool) {
	final := v.p.Report()
	r.mu.Lock() // the sampler reads killed and final
	v.final, v.killed, v.left = final, true, time.Now()
	r.mu.Unlock()
	if vanish && v.vanish != nil {
		v.vanish.cut.Store(true)
		return
	}
	v.cancel()
	<-v.done
}

func (r *runner) stopAll() {
	r.mu.Lock()
	peers := append([]*vpeer(nil), r.peers...)
	r.mu.Unlock()
	for _, v := range peers {
		v.cancel()
	}
	for _, v := range peers {
		<-v.done
		v.vanish.close()
	}
}

func (r *runner) collect(ost origin.Stats, srv *tracker.Server) *Result {
	cfg := r.cfg
	res := &Result{Scenario: cfg.scenario()}
	r.mu.Lock()
	peers := append([]*vpeer(nil), r.peers...)
	r.mu.Unlock()
	res.PeersTotal = len(peers)
	var startups, lat, repairs []float64
	var onTime, due, onTimeLived, dueLived float64
	res.ContinuityMin = 1
	chunkBytes := float64(ost.ChunkBytes) / math.Max(1, float64(ost.Chunks))
	var needed float64
	now := time.Now()
	for _, v := range peers {
		rep := v.final
		end := v.left
		if !v.killed {
			rep = v.p.Report()
			end = now
		}
		if rep.StartupMS >= 0 {
			startups = append(startups, rep.StartupMS)
		}
		lat = append(lat, rep.Latencies...)
		repairs = append(repairs, rep.RepairMS...)
		d := float64(rep.ChunksPlayed + rep.ChunksMissed)
		due += d
		onTime += rep.Continuity * d
		if end.Sub(v.joined) >= 10*time.Second {
			dueLived += d
			onTimeLived += rep.Continuity * d
			res.ContinuityMin = math.Min(res.ContinuityMin, rep.Continuity)
		}
		needed += d * chunkBytes
		res.RelayBytes += rep.RelayBytes
		res.Complaints += rep.Complaints
		res.HTTPFetches += rep.HTTPFetches
		if v.killed {
			res.Killed++
		}
	}
	res.Continuity = ratio(onTime, due)
	res.ContinuityLived = ratio(onTimeLived, dueLived)
	res.StartupP50, res.StartupP95, res.StartupP99 = peer.Percentile(startups, 50), peer.Percentile(startups, 95), peer.Percentile(startups, 99)
	res.LatencyP50, res.LatencyP95, res.LatencyP99 = peer.Percentile(lat, 50), peer.Percentile(lat, 95), peer.Percentile(lat, 99)
	res.RepairP50, res.RepairP95, res.RepairP99 = peer.Percentile(repairs, 50), peer.Percentile(repairs, 95), peer.Percentile(repairs, 99)
	res.Repairs = len(repairs)
	res.OriginRTCBytes, res.OriginHTTPBytes, res.StreamBytes = ost.RTCBytes, ost.HTTPBytes, ost.ChunkBytes
	egress := float64(ost.RTCBytes + ost.HTTPBytes)
	res.OriginEgressCopies = round(egress / math.Max(1, float64(ost.ChunkBytes)))
	if needed > 0 {
		res.OffloadRatio = round(1 - egress/needed)
	}
	res.ChunksGood, res.ChunksCorrupt = r.good.Load(), r.corrupt.Load()
	res.Series = r.series
	res.StartupCDF, res.LatencyCDF, res.RepairCDF = cdf(startups), cdf(lat), cdf(repairs)
	res.DepthHist = depthHistogram(r.url)
	res.DepthMax = maxDepths(res.DepthHist)
	return res
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 1
	}
	return round(a / b)
}

func round(x float64) float64 { return math.Round(x*1e4) / 1e4 }

// cdf is the percentiles 0, 1, …, 100 of xs (nil for none).
func cdf(xs []float64) []float64 {
	if len(xs) == 0 {
		return nil
	}
	qs := make([]float64, 101)
	for p := range qs {
		qs[p] = float64(p)
	}
	out := peer.Percentiles(xs, qs...)
	for i := range out {
		out[i] = round(out[i])
	}
	return out
}

// depthHistogram counts, per tree, the peers at each depth.
func depthHistogram(url string) [][]int {
	resp, err := http.Get(url + "/api/v1/channels/loadtest/forest")
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var snap proto.ForestSnapshot
	if json.NewDecoder(resp.Body).Decode(&snap) != nil {
		return nil
	}
	hist := make([][]int, snap.Trees)
	for _, n := range snap.Nodes {
		for t, e := range n.Trees {
			if t >= len(hist) || e.Fallback || e.Depth <= 0 {
				continue
			}
			for len(hist[t]) <= e.Depth {
				hist[t] = append(hist[t], 0)
			}
			hist[t][e.Depth]++
		}
	}
	return hist
}

// maxDepths is the deepest occupied depth of each tree of a histogram.
func maxDepths(hist [][]int) []int {
	out := make([]int, len(hist))
	for t, h := range hist {
		out[t] = max(0, len(h)-1)
	}
	return out
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// Summary writes the result as a table people read. It says first
// whether the figures were measured on real peers or come from the
// simulator.
func (res *Result) Summary(w io.Writer) {
	mode := "real: pion peers over loopback, measured"
	if res.Sim != nil {
		mode = "sim: every figure below comes from the simulator (" + res.Sim.Net.Name + " model), not from a network"
	}
	rows := [][2]string{{"mode", mode}}
	if res.Interrupted {
		rows = append(rows, [2]string{"interrupted", "yes: the figures cover the run up to the interruption"})
	}
	rows = append(rows, [][2]string{
		{"peers (total, killed)", fmt.Sprintf("%d, %d", res.PeersTotal, res.Killed)},
		{"origin_egress_copies", fmt.Sprintf("%.2f", res.OriginEgressCopies)},
		{"offload_ratio", fmt.Sprintf("%.4f", res.OffloadRatio)},
		{"continuity (all / alive ≥10s / worst)", fmt.Sprintf("%.4f / %.4f / %.4f", res.Continuity, res.ContinuityLived, res.ContinuityMin)},
		{"startup_ms p50/p95/p99", fmt.Sprintf("%.0f / %.0f / %.0f", res.StartupP50, res.StartupP95, res.StartupP99)},
		{"latency_ms p50/p95/p99", fmt.Sprintf("%.1f / %.1f / %.1f", res.LatencyP50, res.LatencyP95, res.LatencyP99)},
		{"repair_ms p50/p95 (n)", fmt.Sprintf("%.0f / %.0f (%d)", res.RepairP50, res.RepairP95, res.Repairs)},
		{"depth max per tree", fmt.Sprint(res.DepthMax)},
		{"relay_bytes", fmt.Sprintf("%d", res.RelayBytes)},
		{"complaints / HTTP fetches", fmt.Sprintf("%d / %d", res.Complaints, res.HTTPFetches)},
	}...)
	if sim := res.Sim; sim != nil {
		rows = append(rows,
			[2]string{"chunks rebuilt (simulated)", fmt.Sprintf("%d", res.ChunksGood)},
			[2]string{"tracker response ms mean / max", fmt.Sprintf("%.2f / %.2f", sim.TrackerMeanMS, sim.TrackerMaxMS)})
		for i, line := range sim.Net.describe() {
			label := ""
			if i == 0 {
				label = "model (" + sim.Net.Name + ")"
			}
			rows = append(rows, [2]string{label, line})
		}
		rows = append(rows,
			[2]string{"simulator: wall / cpu / events", fmt.Sprintf("%.1f s / %.0f%% / %d (%.1f M events/s)", res.WallSeconds, res.CPUTotalPct, sim.Events, float64(sim.Events)/math.Max(1e-9, res.WallSeconds)/1e6)},
			[2]string{"simulator: max RSS / heap peak", fmt.Sprintf("%.0f MB / %.0f MB", res.MaxRSSMB, sim.HeapPeakMB)})
	} else {
		rows = append(rows,
			[2]string{"chunks identical / corrupt", fmt.Sprintf("%d / %d", res.ChunksGood, res.ChunksCorrupt)},
			[2]string{"cpu total / per peer", fmt.Sprintf("%.0f%% / %.2f%%", res.CPUTotalPct, res.CPUPerPeerPct)},
			[2]string{"wall / max RSS", fmt.Sprintf("%.1f s / %.0f MB", res.WallSeconds, res.MaxRSSMB)})
	}
	if b := res.Baseline; b != nil {
		rows = append(rows,
			[2]string{"baseline http: origin_egress_copies", fmt.Sprintf("%.2f (coopcast: %.2f, %.1f× less)", b.OriginEgressCopies, res.OriginEgressCopies, b.OriginEgressCopies/math.Max(0.01, res.OriginEgressCopies))},
			[2]string{"baseline http: continuity", fmt.Sprintf("%.4f", b.Continuity)},
			[2]string{"baseline http: latency_ms p50/p99", fmt.Sprintf("%.1f / %.1f", b.LatencyP50, b.LatencyP99)},
			[2]string{"baseline http: startup_ms p95", fmt.Sprintf("%.0f", b.StartupP95)})
	}
	if res.Scenario.Source != "" && res.Scenario.Source != "synthetic" {
		rows = append(rows, [2]string{"outputs decoded / failed (ffmpeg)", fmt.Sprintf("%d / %d", res.OutputsDecoded, res.OutputsFailed)})
		for _, e := range res.DecodeErrors {
			rows = append(rows, [2]string{"  decode error", e})
		}
	}
	for _, r := range rows {
		fmt.Fprintf(w, "  %-40s %s\n", r[0], r[1])
	}
}

// decodeOutputs runs ffmpeg over every peer's output file.
func (r *runner) decodeOutputs(res *Result) {
	r.mu.Lock()
	peers := append([]*vpeer(nil), r.peers...)
	r.mu.Unlock()
	for _, v := range peers {
		if v.out == nil {
			continue
		}
		v.out.Close()
		name := v.out.Name()
		if st, err := os.Stat(name); err == nil && st.Size() == 0 {
			continue // a peer killed before it played anything
		}
		out, err := exec.Command("ffmpeg", "-v", "error", "-i", name, "-f", "null", "-").CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			res.OutputsFailed++
			if len(res.DecodeErrors) < 5 {
				res.DecodeErrors = append(res.DecodeErrors, fmt.Sprintf("%s: %v %s", filepath.Base(name), err, firstLine(out)))
			}
			continue
		}
		res.OutputsDecoded++
	}
}

func firstLine(b []byte) string {
	s := string(bytes.TrimSpace(b))
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return s
}

// vanisher cuts one real peer off the world without closing anything, as
// a machine that loses its network would: its UDP sockets (through a
// pion transport.Net) drop what they send and receive, its tracker
// connection (through a TCP proxy) stops carrying bytes both ways, and its
// HTTP fetches fail. Until cut, it passes everything through.
type vanisher struct {
	cut  atomic.Bool
	url  string // the tracker, through the proxy
	net  transport.Net
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex // guards conns
	conn []net.Conn
	once sync.Once
}

func newVanisher(tracker string) (*vanisher, error) {
	sn, err := stdnet.NewNet()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	v := &vanisher{url: "http://" + ln.Addr().String(), ln: ln}
	v.net = cutNet{Net: sn, cut: &v.cut}
	v.wg.Add(1)
	go func() {
		defer v.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", tracker)
			if err != nil {
				c.Close()
				continue
			}
			v.mu.Lock()
			v.conn = append(v.conn, c, up)
			v.mu.Unlock()
			v.wg.Add(2)
			go v.pump(up, c)
			go v.pump(c, up)
		}
	}()
	return v, nil
}

// pump copies src to dst, or swallows it once cut.
func (v *vanisher) pump(dst, src net.Conn) {
	defer v.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !v.cut.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			if !v.cut.Load() {
				dst.Close() // pass a close on, while not cut
			}
			return
		}
	}
}

// close ends the proxy and its connections. Safe on nil and twice.
func (v *vanisher) close() {
	if v == nil {
		return
	}
	v.once.Do(func() {
		v.ln.Close()
		v.mu.Lock()
		for _, c := range v.conn {
			c.Close()
		}
		v.mu.Unlock()
		v.wg.Wait()
	})
}

func (v *vanisher) roundTripper(base http.RoundTripper) http.RoundTripper {
	return cutRoundTripper{base: base, cut: &v.cut}
}

var errVanished = errors.New("loadtest: the peer has vanished")

type cutRoundTripper struct {
	base http.RoundTripper
	cut  *atomic.Bool
}

func (t cutRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.cut.Load() {
		return nil, errVanished
	}
	return t.base.RoundTrip(req)
}

// cutNet is the host network whose UDP sockets fall silent once cut.
type cutNet struct {
	transport.Net
	cut *atomic.Bool
}

func (n cutNet) ListenUDP(network string, laddr *net.UDPAddr) (transport.UDPConn, error) {
	c, err := n.Net.ListenUDP(network, laddr)
	if err != nil {
		return nil, err
	}
	return cutUDP{UDPConn: c, cut: n.cut}, nil
}

func (n cutNet) ListenPacket(network, address string) (net.PacketConn, error) {
	c, err := n.Net.ListenPacket(network, address)
	if err != nil {
		return nil, err
	}
	return cutPacket{PacketConn: c, cut: n.cut}, nil
}

// cutUDP drops what it would send and what it receives once cut.
type cutUDP struct {
	transport.UDPConn
	cut *atomic.Bool
}

func (c cutUDP) Read(b []byte) (int, error) {
	for {
		n, err := c.UDPConn.Read(b)
		if err != nil || !c.cut.Load() {
			return n, err
		}
	}
}

func (c cutUDP) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.UDPConn.ReadFrom(b)
		if err != nil || !c.cut.Load() {
			return n, a, err
		}
	}
}

func (c cutUDP) ReadFromUDP(b []byte) (int, *net.UDPAddr, error) {
	for {
		n, a, err := c.UDPConn.ReadFromUDP(b)
		if err != nil || !c.cut.Load() {
			return n, a, err
		}
	}
}

func (c cutUDP) ReadMsgUDP(b, oob []byte) (int, int, int, *net.UDPAddr, error) {
	for {
		n, oobn, flags, a, err := c.UDPConn.ReadMsgUDP(b, oob)
		if err != nil || !c.cut.Load() {
			return n, oobn, flags, a, err
		}
	}
}

func (c cutUDP) Write(b []byte) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.Write(b)
}

func (c cutUDP) WriteTo(b []byte, a net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteTo(b, a)
}

func (c cutUDP) WriteToUDP(b []byte, a *net.UDPAddr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.UDPConn.WriteToUDP(b, a)
}

func (c cutUDP) WriteMsgUDP(b, oob []byte, a *net.UDPAddr) (int, int, error) {
	if c.cut.Load() {
		return len(b), len(oob), nil
	}
	return c.UDPConn.WriteMsgUDP(b, oob, a)
}

// cutPacket is cutUDP for a plain PacketConn.
type cutPacket struct {
	net.PacketConn
	cut *atomic.Bool
}

func (c cutPacket) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, a, err := c.PacketConn.ReadFrom(b)
		if err != nil || !c.cut.Load() {
			return n, a, err
		}
	}
}

func (c cutPacket) WriteTo(b []byte, a net.Addr) (int, error) {
	if c.cut.Load() {
		return len(b), nil
	}
	return c.PacketConn.WriteTo(b, a)
}
