package main

// Process-level fault tests: the real coopcast binary (built once,
// without -race, like loadtest's TestSimAgreesWithReal) run as a tracker,
// an origin and native peers, each its own process on loopback, and
// broken the way hosts break: a tracker SIGKILLed and restarted, a
// quarter of the peers SIGKILLed or SIGSTOPped at once. Every process is
// in its own process group and killed with it on the way out, pass or
// fail.

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/proto"
	"github.com/coopcast/coopcast/internal/testbin"
	"github.com/coopcast/coopcast/peer"
)

// faultPeers is how many peer processes a fault test runs, by default
// the figure given; COOPCAST_FAULT_PEERS overrides it (for the larger
// runs in docs/BENCHMARKS.md).
func faultPeers(t *testing.T, def int) int {
	t.Helper()
	if s := os.Getenv("COOPCAST_FAULT_PEERS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 4 {
			t.Fatalf("COOPCAST_FAULT_PEERS=%q: want a number ≥ 4", s)
		}
		return n
	}
	return def
}

// proc is one coopcast process, in its own process group.
type proc struct {
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

// startProc starts the binary with args as a process group of its own,
// its output in a log file; the test's cleanup kills the group (after a
// SIGCONT, should it be stopped) and waits for it.
func startProc(t *testing.T, bin, name string, args ...string) *proc {
	t.Helper()
	dir := t.TempDir()
	logPath := filepath.Join(dir, name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("start %s: %v", name, err)
	}
	f.Close()
	p := &proc{name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		p.signal(syscall.SIGCONT)
		p.signal(syscall.SIGKILL)
		<-p.done
		if dir := os.Getenv("COOPCAST_FAULT_LOGS"); dir != "" {
			if b, err := os.ReadFile(logPath); err == nil {
				os.WriteFile(filepath.Join(dir, strings.ReplaceAll(t.Name(), "/", "_")+"-"+name+".log"), b, 0o644)
			}
		}
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 3000 {
				b = b[len(b)-3000:]
			}
			t.Logf("--- %s (tail of its log)\n%s", name, b)
		}
	})
	return p
}

// signal sends sig to p's process group, unless p has exited and been
// waited for (its id may then be another's).
func (p *proc) signal(sig syscall.Signal) {
	if !p.exited() {
		syscall.Kill(-p.cmd.Process.Pid, sig)
	}
}

// exited reports whether p has exited.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// freeAddr returns a loopback address nothing listens on now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// faultStack is a tracker and an origin, each its own process, and the
// peers the test starts.
type faultStack struct {
	t        *testing.T
	bin      string
	addr     string // the tracker's
	url      string
	stateDir string
	trk      *proc
	origin   *proc
	peers    []*faultPeer
}

type faultPeer struct {
	*proc
	id     uint64 // from its "joined" log line
	report string
}

const faultChannel = "c"

func newFaultStack(t *testing.T, bin string) *faultStack {
	t.Helper()
	s := &faultStack{t: t, bin: bin, addr: freeAddr(t), stateDir: t.TempDir()}
	s.url = "http://" + s.addr
	s.startTracker()
	s.origin = startProc(t, bin, "origin", "origin", "--tracker", s.url, "--channel", faultChannel, "--publish-token", "T",
		"--source", "synthetic", "--bitrate", "300k", "--listen", freeAddr(t), "--log-format", "json",
		// Fallback limits off: every peer is on loopback, one address, and
		// a quarter of the peers failing at once can orphan every survivor
		// in every tree; these tests measure the repair, and a default cap
		// (20 × the bitrate) would turn the minutes of HTTP it needs into
		// 429s (docs/BENCHMARKS.md, Faults, has that figure too).
		"--fallback-per-ip", "off", "--fallback-cap", "off")
	checkFor(t, 10*time.Second, 50*time.Millisecond, func() error {
		if !originConnected(t, s.url) {
			return fmt.Errorf("origin not connected")
		}
		return nil
	})
	return s
}

// startTracker starts (or restarts) the tracker on s.addr with its state
// dir, so that its resume secret outlives it; the caps per address are
// lifted, every peer being on loopback.
func (s *faultStack) startTracker() {
	s.t.Helper()
	args := []string{"tracker", "--listen", s.addr, "--publish-token", "T", "--state-dir", s.stateDir,
		"--max-conns-per-ip", "10000", "--joins-per-ip", "1000", "--join-burst", "10000", "--log-format", "json"}
	if os.Getenv("COOPCAST_FAULT_LOGS") != "" {
		args = append(args, "--log-level", "debug") // complaints and probes, for the timeline
	}
	s.trk = startProc(s.t, s.bin, "tracker", args...)
	checkFor(s.t, 10*time.Second, 20*time.Millisecond, func() error {
		resp, err := http.Get(s.url + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
}

// addPeers starts n peers, one after another, each once the one before
// has joined (its id read from its log), so that the test knows which
// process is which peer.
func (s *faultStack) addPeers(n int) {
	s.t.Helper()
	for range n {
		i := len(s.peers)
		report := filepath.Join(s.t.TempDir(), "report.json")
		p := &faultPeer{report: report, proc: startProc(s.t, s.bin, fmt.Sprintf("peer%d", i), "peer", "--tracker", s.url,
			"--channel", faultChannel, "--report", report, "--duration", "3m", "--log-format", "json")}
		checkFor(s.t, 15*time.Second, 20*time.Millisecond, func() error {
			id, ok := joinedID(p.log)
			if !ok {
				if p.exited() {
					s.t.Fatalf("peer%d exited before joining", i)
				}
				return fmt.Errorf("peer%d has not joined", i)
			}
			p.id = id
			return nil
		})
		s.peers = append(s.peers, p)
	}
}

// joinedID reads a peer's id from its "joined" log line.
func joinedID(logPath string) (uint64, bool) {
	f, err := os.Open(logPath)
	if err != nil {
		return 0, false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var l struct {
			Msg  string `json:"msg"`
			Peer uint64 `json:"peer"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "joined" {
			return l.Peer, true
		}
	}
	return 0, false
}

// forest returns the tracker's /forest, or an error while the tracker or
// the channel is not there.
func (s *faultStack) forest() (proto.ForestSnapshot, error) {
	var snap proto.ForestSnapshot
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/api/v1/channels/"+faultChannel+"/forest", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return snap, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return snap, fmt.Errorf("/forest: %s", resp.Status)
	}
	return snap, json.NewDecoder(resp.Body).Decode(&snap)
}

// settled waits until every peer in ids is in the forest with a parent
// (or fallback) in every tree, none pending.
func (s *faultStack) settled(ids []uint64, within time.Duration) proto.ForestSnapshot {
	s.t.Helper()
	var snap proto.ForestSnapshot
	checkFor(s.t, within, 100*time.Millisecond, func() error {
		var err error
		if snap, err = s.forest(); err != nil {
			return err
		}
		return missing(snap, ids)
	})
	return snap
}

// missing says which of ids the forest lacks or has pending.
func missing(snap proto.ForestSnapshot, ids []uint64) error {
	nodes := make(map[uint64]proto.ForestNode, len(snap.Nodes))
	for _, n := range snap.Nodes {
		nodes[n.ID] = n
	}
	var absent, pending []uint64
	for _, id := range ids {
		n, ok := nodes[id]
		switch {
		case !ok:
			absent = append(absent, id)
		case slices.ContainsFunc(n.Trees, func(e proto.ForestEdge) bool { return e.Pending }):
			pending = append(pending, id)
		}
	}
	if len(absent)+len(pending) > 0 {
		return fmt.Errorf("%d of %d peers not in the forest, %d pending", len(absent), len(ids), len(pending))
	}
	return nil
}

// end stops the live peers with SIGTERM (they write their reports and
// exit) and returns each one's report by peer id.
func (s *faultStack) end(peers []*faultPeer) map[uint64]peer.Report {
	s.t.Helper()
	for _, p := range peers {
		p.signal(syscall.SIGTERM)
	}
	out := make(map[uint64]peer.Report)
	for _, p := range peers {
		select {
		case <-p.done:
		case <-time.After(20 * time.Second):
			s.t.Fatalf("%s (peer %d) did not exit 20 s after SIGTERM", p.name, p.id)
		}
		b, err := os.ReadFile(p.report)
		if err != nil {
			s.t.Fatalf("%s (peer %d): no report: %v", p.name, p.id, err)
		}
		var r peer.Report
		if err := json.Unmarshal(b, &r); err != nil {
			s.t.Fatalf("%s: report: %v", p.name, err)
		}
		out[p.id] = r
	}
	return out
}

// ids returns the peers' ids.
func ids(peers []*faultPeer) []uint64 {
	out := make([]uint64, len(peers))
	for i, p := range peers {
		out[i] = p.id
	}
	return out
}

// checkContinuity fails the test for every report under min, and logs
// the lowest.
func checkContinuity(t *testing.T, reports map[uint64]peer.Report, least float64) {
	t.Helper()
	lo, played, missed := 1.0, uint64(0), uint64(0)
	for id, r := range reports {
		lo = min(lo, r.Continuity)
		played += r.ChunksPlayed
		missed += r.ChunksMissed
		if r.Continuity < least || r.ChunksPlayed == 0 {
			t.Errorf("peer %d: continuity %.4f (played %d, missed %d), want ≥ %v", id, r.Continuity, r.ChunksPlayed, r.ChunksMissed, least)
		}
	}
	t.Logf("%d peers: lowest continuity %.4f; chunks played %d, missed %d", len(reports), lo, played, missed)
}

// checkFor calls f every poll until it returns nil, failing the test
// with f's last error after within.
func checkFor(t *testing.T, within, poll time.Duration, f func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v: %v", within, err)
		}
		time.Sleep(poll)
	}
}

// TestFaultTrackerRestart: the tracker is SIGKILLed under a swarm of
// native peer processes and restarted on the same address 5 s later with
// the same state dir. Peers (and the origin) reconnect with backoff and
// resume; the tracker rebuilds the forest from what they report. Every
// peer must keep continuity ≥ 0.999 over the run (the data plane does not
// need the tracker), and every peer must be back in /forest, placed,
// within 5 s of the restart.
func TestFaultTrackerRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("process swarm; not with -short")
	}
	n := faultPeers(t, 30)
	s := newFaultStack(t, testbin.Coopcast(t))
	start := time.Now()
	s.addPeers(n)
	all := ids(s.peers)
	s.settled(all, 15*time.Second)
	t.Logf("%d peers joined and placed in %v", n, time.Since(start).Round(time.Millisecond))
	time.Sleep(3 * time.Second) // the swarm plays for a while before the fault
	before := s.settled(all, 5*time.Second)

	s.trk.signal(syscall.SIGKILL)
	<-s.trk.done
	killed := time.Now()
	time.Sleep(5 * time.Second) // the outage the test is about
	s.startTracker()
	restarted := time.Now()
	after := s.settled(all, 20*time.Second)
	rebuilt := time.Since(restarted)
	kept := samePlaces(before, after, all)
	t.Logf("tracker down %v; forest rebuilt (all %d peers placed) %v after the restart; %d of %d peers in the same place in every tree",
		restarted.Sub(killed).Round(time.Millisecond), n, rebuilt.Round(time.Millisecond), kept, n)
	if rebuilt > 5*time.Second {
		t.Errorf("forest rebuilt %v after the restart, want within 5 s", rebuilt.Round(time.Millisecond))
	}
	time.Sleep(3 * time.Second) // and plays on after it
	checkContinuity(t, s.end(s.peers), 0.999)
}

// samePlaces counts the peers of ids whose parent in every tree is the
// same in both snapshots.
func samePlaces(a, b proto.ForestSnapshot, ids []uint64) int {
	parents := func(s proto.ForestSnapshot) map[uint64][]uint64 {
		m := make(map[uint64][]uint64)
		for _, n := range s.Nodes {
			for _, e := range n.Trees {
				m[n.ID] = append(m[n.ID], e.Parent)
			}
		}
		return m
	}
	pa, pb := parents(a), parents(b)
	k := 0
	for _, id := range ids {
		if slices.Equal(pa[id], pb[id]) && pa[id] != nil {
			k++
		}
	}
	return k
}

// TestFaultMassKill: a quarter of the peers (those with the most
// children: the hardest quarter to lose) fail at once, by SIGKILL (their
// sockets close) and by SIGSTOP (hosts that go quiet: nothing closes,
// and only silence tells). Every orphan must be re-parented within 2 s
// (from /forest polled every 100 ms: no survivor has a failed peer as
// its parent in any tree) and every survivor keep continuity ≥ 0.99.
func TestFaultMassKill(t *testing.T) {
	if testing.Short() {
		t.Skip("process swarm; not with -short")
	}
	bin := testbin.Coopcast(t)
	for _, sig := range []syscall.Signal{syscall.SIGKILL, syscall.SIGSTOP} {
		t.Run(strings.ToUpper(unix(sig)), func(t *testing.T) {
			n := faultPeers(t, 30)
			s := newFaultStack(t, bin)
			s.addPeers(n)
			before := s.settled(ids(s.peers), 15*time.Second)
			time.Sleep(3 * time.Second)
			if snap, err := s.forest(); err == nil {
				before = snap
			}

			victims, survivors := pickVictims(before, s.peers, n/4)
			dead := make(map[uint64]bool)
			orphans := 0
			for _, v := range victims {
				dead[v.id] = true
			}
			for _, nd := range before.Nodes {
				if !dead[nd.ID] && slices.ContainsFunc(nd.Trees, func(e proto.ForestEdge) bool { return dead[e.Parent] }) {
					orphans++
				}
			}
			at := time.Now()
			for _, v := range victims {
				v.signal(sig)
			}
			if os.Getenv("COOPCAST_FAULT_LOGS") != "" {
				t.Logf("%s at %s; victims %v", unix(sig), at.Format(time.RFC3339Nano), ids(victims))
			}
			var took time.Duration
			checkFor(t, 15*time.Second, 100*time.Millisecond, func() error {
				snap, err := s.forest()
				if err != nil {
					return err
				}
				var left []string
				for _, nd := range snap.Nodes {
					for i, e := range nd.Trees {
						if !dead[nd.ID] && dead[e.Parent] {
							left = append(left, fmt.Sprintf("%d in tree %d under %d", nd.ID, i, e.Parent))
						}
					}
				}
				if len(left) > 0 {
					if os.Getenv("COOPCAST_FAULT_LOGS") != "" {
						t.Logf("%v: %d edges under failed parents: %v", time.Since(at).Round(time.Millisecond), len(left), left)
					}
					return fmt.Errorf("%d edges of survivors still under a failed parent: %v", len(left), left[:min(len(left), 8)])
				}
				took = time.Since(at)
				return nil
			})
			t.Logf("%s of %d of %d peers (%d orphans, %d children among them): every orphan re-parented in %v",
				unix(sig), len(victims), n, orphans, childrenOf(before, dead), took.Round(time.Millisecond))
			if took > 2*time.Second {
				t.Errorf("orphans re-parented %v after the failure, want within 2 s", took.Round(time.Millisecond))
			}
			time.Sleep(3 * time.Second) // survivors play on
			checkContinuity(t, s.end(survivors), 0.99)
		})
	}
}

func unix(sig syscall.Signal) string {
	if sig == syscall.SIGSTOP {
		return "sigstop"
	}
	return "sigkill"
}

// pickVictims returns the k peers with the most children in snap (ties
// by join order) and the rest.
func pickVictims(snap proto.ForestSnapshot, peers []*faultPeer, k int) (victims, rest []*faultPeer) {
	children := make(map[uint64]int)
	for _, n := range snap.Nodes {
		children[n.ID] = n.Children
	}
	order := slices.Clone(peers)
	sort.SliceStable(order, func(a, b int) bool { return children[order[a].id] > children[order[b].id] })
	victims = order[:k]
	for _, p := range peers {
		if !slices.Contains(victims, p) {
			rest = append(rest, p)
		}
	}
	return victims, rest
}

// childrenOf counts the children the dead peers had.
func childrenOf(snap proto.ForestSnapshot, dead map[uint64]bool) int {
	c := 0
	for _, n := range snap.Nodes {
		if dead[n.ID] {
			c += n.Children
		}
	}
	return c
}
