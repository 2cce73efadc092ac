package forest

import (
	"flag"
	"fmt"
	"math"
	"math/rand/v2"
	"slices"
	"testing"
)

// boundChecks and boundTrees count how often depthBound ran and how many
// trees it could hold to the bound, so the test notices if the generator
// stops producing forests where the bound applies.
var boundChecks, boundTrees int

var (
	propSeqs = flag.Int("forest.seqs", 10000, "random event sequences in TestInvariants")
	propSeed = flag.Uint64("forest.seed", 0, "run only this sequence seed (0: all)")
)

// model is what the peers themselves know: only what decisions told them.
type model struct {
	m       int
	parent  map[PeerID][]PeerID // per tree; Origin for fallback too
	fb      map[PeerID][]bool
	present map[PeerID]bool
}

func newModel(m int) *model {
	return &model{m: m, parent: map[PeerID][]PeerID{}, fb: map[PeerID][]bool{}, present: map[PeerID]bool{}}
}

func (md *model) add(id PeerID) {
	md.present[id] = true
	md.parent[id] = make([]PeerID, md.m)
	md.fb[id] = make([]bool, md.m)
	for i := range md.parent[id] {
		md.parent[id][i] = math.MaxUint64 // unassigned
	}
}

func (md *model) apply(t *testing.T, ds []Decision) {
	t.Helper()
	for _, d := range ds {
		if !md.present[d.Peer] {
			t.Fatalf("decision %v about a peer that is not there", d)
		}
		if d.Op == Attach && d.Parent != Origin && !md.present[d.Parent] {
			t.Fatalf("decision %v names a parent that is not there", d)
		}
		switch d.Op {
		case Attach:
			md.parent[d.Peer][d.Tree] = d.Parent
			md.fb[d.Peer][d.Tree] = false
		case Detach:
			if md.parent[d.Peer][d.Tree] != d.Parent {
				t.Fatalf("decision %v: peer's parent was %d", d, md.parent[d.Peer][d.Tree])
			}
			md.parent[d.Peer][d.Tree] = math.MaxUint64
		case Fallback:
			md.parent[d.Peer][d.Tree] = math.MaxUint64
			md.fb[d.Peer][d.Tree] = true
		default:
			t.Fatalf("unknown decision %v", d)
		}
	}
}

// agree checks that every peer's own view matches the forest.
func (md *model) agree(f *Forest) error {
	if len(md.present) != f.Len() {
		return fmt.Errorf("model has %d peers, forest %d", len(md.present), f.Len())
	}
	var err error
	f.Each(func(v NodeView) bool {
		for i, tv := range v.Trees {
			switch {
			case tv.Pending:
			case tv.Fallback:
				if !md.fb[v.ID][i] {
					err = fmt.Errorf("peer %d tree %d: on fallback but was not told", v.ID, i)
				}
			default:
				if md.fb[v.ID][i] || md.parent[v.ID][i] != tv.Parent {
					err = fmt.Errorf("peer %d tree %d: parent %d, peer believes %d (fallback %v)", v.ID, i, tv.Parent, md.parent[v.ID][i], md.fb[v.ID][i])
				}
			}
			if err != nil {
				return false
			}
		}
		return true
	})
	return err
}

// depthBound checks depth ≤ ceil(log_d N)+2 in every tree where capacity
// allows: nobody on fallback or borrowed edges there, and every slot-holder
// of that tree (origin included) with at least d=2 slots.
func depthBound(f *Forest) error {
	boundChecks++
	n := f.Len()
	if n < 2 {
		return nil
	}
	st := f.Stats()
	if st.Borrowed > 0 {
		return nil
	}
	minSlots := make([]int, f.m)
	for i := range minSlots {
		minSlots[i] = f.cfg.OriginSlots
	}
	f.Each(func(v NodeView) bool {
		if v.Home >= 0 && v.Slots < minSlots[v.Home] {
			minSlots[v.Home] = v.Slots
		}
		return true
	})
	for i := 0; i < f.m; i++ {
		d := minSlots[i]
		if d < 2 || st.Fallbacks[i] > 0 {
			continue
		}
		boundTrees++
		bound := int(math.Ceil(math.Log(float64(n))/math.Log(float64(d)))) + 2
		if st.MaxDepth[i] > bound {
			return fmt.Errorf("tree %d: depth %d > bound %d (N=%d, d=%d)", i, st.MaxDepth[i], bound, n, d)
		}
	}
	return nil
}

// TestInvariants drives forests through many seeded random event sequences
// (joins, leaves, complaints, capacity changes, tracker restarts) and
// checks every invariant, the depth bound and that the peers' own views,
// built only from decisions, match the forest after every event.
func TestInvariants(t *testing.T) {
	seqs := *propSeqs
	if testing.Short() {
		seqs = 1000
	}
	for s := 1; s <= seqs; s++ {
		seed := uint64(s)
		if *propSeed != 0 {
			if seed != *propSeed {
				continue
			}
		}
		if err := runSequence(t, seed); err != nil {
			t.Fatalf("seed %d (rerun with -forest.seed=%d -v): %v", seed, seed, err)
		}
	}
	t.Logf("%d sequences; depth bound checked %d times over %d trees", seqs, boundChecks, boundTrees)
	if *propSeed == 0 && boundTrees < seqs {
		t.Fatalf("depth bound applied to only %d trees in %d sequences: the generator no longer exercises it", boundTrees, seqs)
	}
}

func runSequence(t *testing.T, seed uint64) error {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 0xc00bca57))
	cfg := Config{
		Trees:         1 + rng.IntN(6),
		OriginSlots:   1 + rng.IntN(4),
		OriginReserve: rng.IntN(3),
		MaxSlots:      1 + rng.IntN(10),
	}
	f, err := New(cfg)
	if err != nil {
		return err
	}
	md := newModel(f.m)
	var live []PeerID
	next := PeerID(1)
	verbose := *propSeed != 0
	slots := func() int {
		switch r := rng.IntN(10); {
		case r < 3:
			return 0
		case r < 9:
			return 2 + rng.IntN(4)
		default:
			return rng.IntN(40) - 5 // absurd and negative included
		}
	}
	events := 1 + rng.IntN(120)
	// A complaint forbids a parent, so the subtree may land deeper than the
	// bound: the depth bound is checked in the sequences without complaints
	// (even seeds), the other invariants in all of them.
	complaints := seed%2 == 1
	for e := 0; e < events; e++ {
		var ds []Decision
		var what string
		var leaving PeerID
		switch r := rng.IntN(100); {
		case r < 45 || len(live) == 0:
			id := next
			next++
			p := Peer{Kind: Kind(rng.IntN(2)), Slots: slots()}
			what = fmt.Sprintf("join %d %+v", id, p)
			md.add(id)
			ds, err = f.Join(id, p)
			live = append(live, id)
		case r < 75:
			k := rng.IntN(len(live))
			id := live[k]
			live = append(live[:k], live[k+1:]...)
			what = fmt.Sprintf("leave %d", id)
			ds, err = f.Leave(id)
			leaving = id
		case r < 85 && complaints:
			id := live[rng.IntN(len(live))]
			tree := rng.IntN(f.m)
			what = fmt.Sprintf("complain %d tree %d", id, tree)
			ds, err = f.Complain(id, tree)
		case r < 95 && r >= 85:
			id := live[rng.IntN(len(live))]
			s := slots()
			what = fmt.Sprintf("slots %d %d", id, s)
			ds, err = f.SetSlots(id, s)
		case r >= 95:
			what = "restart"
			f, err = restart(t, f, md, rng)
			live = live[:0]
			for id := range md.present {
				live = append(live, id)
			}
			slices.Sort(live) // map order would make the run irreproducible
		}
		if verbose {
			t.Logf("event %d: %s -> %v", e, what, ds)
		}
		if err != nil {
			return fmt.Errorf("event %d (%s): %v", e, what, err)
		}
		md.apply(t, ds)
		if leaving != 0 {
			delete(md.present, leaving)
		}
		if err := f.Check(); err != nil {
			return fmt.Errorf("after event %d (%s): %v", e, what, err)
		}
		if err := md.agree(f); err != nil {
			return fmt.Errorf("after event %d (%s): %v", e, what, err)
		}
		if complaints {
			continue
		}
		if err := depthBound(f); err != nil {
			return fmt.Errorf("after event %d (%s): %v", e, what, err)
		}
	}
	return nil
}

// restart rebuilds the forest the way a restarted tracker does: every peer
// reports what it believes, in random order, some peers never come back,
// then Settle. Peers whose reports were consistent keep their parents.
func restart(t *testing.T, old *Forest, md *model, rng *rand.Rand) (*Forest, error) {
	t.Helper()
	f, err := New(old.cfg)
	if err != nil {
		return nil, err
	}
	type report struct {
		id      PeerID
		p       Peer
		home    int
		parents []PeerID
	}
	var reps []report
	var views []NodeView
	old.Each(func(v NodeView) bool { views = append(views, v); return true })
	slices.SortFunc(views, func(a, b NodeView) int { return int(a.ID) - int(b.ID) })
	for _, v := range views {
		r := report{id: v.ID, p: Peer{Kind: v.Kind, Slots: v.Slots}, home: v.Home, parents: make([]PeerID, old.m)}
		for i := range r.parents {
			r.parents[i] = md.parent[v.ID][i]
			if md.fb[v.ID][i] {
				r.parents[i] = Origin
			}
		}
		reps = append(reps, r)
	}
	rng.Shuffle(len(reps), func(a, b int) { reps[a], reps[b] = reps[b], reps[a] })
	kept := 0
	for k, r := range reps {
		// A few peers do not come back: they left while the tracker was down.
		if rng.IntN(10) == 0 {
			delete(md.present, r.id)
			continue
		}
		ds, err := f.Restore(r.id, r.p, r.home, r.parents)
		if err != nil {
			return nil, fmt.Errorf("restore %d: %v", r.id, err)
		}
		md.apply(t, ds)
		if err := f.Check(); err != nil {
			return nil, fmt.Errorf("after restore %d of %d: %v", k, len(reps), err)
		}
		kept++
	}
	ds := f.Settle()
	md.apply(t, ds)
	var pending error
	f.Each(func(v NodeView) bool {
		for i, tv := range v.Trees {
			if tv.Pending {
				pending = fmt.Errorf("peer %d still pending in tree %d after Settle", v.ID, i)
				return false
			}
		}
		return true
	})
	return f, pending
}

// TestRestoreKeepsLinks: when every peer comes back with a consistent
// report, no peer changes parent in any tree.
func TestRestoreKeepsLinks(t *testing.T) {
	for _, tc := range []struct {
		name  string
		peers int
		seed  uint64
	}{{"small", 20, 1}, {"medium", 300, 2}, {"large", 2000, 3}} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(tc.seed, 1))
			f, _ := New(Config{})
			md := newModel(f.m)
			for id := PeerID(1); id <= PeerID(tc.peers); id++ {
				md.add(id)
				slots := 5 + rng.IntN(4) // enough upload that nobody needs fallback
				if id%4 == 0 {
					slots = 0
				}
				ds, err := f.Join(id, Peer{Kind: Native, Slots: slots})
				if err != nil {
					t.Fatal(err)
				}
				md.apply(t, ds)
			}
			before := map[PeerID][]TreeView{}
			var reps []NodeView
			f.Each(func(v NodeView) bool { before[v.ID] = v.Trees; reps = append(reps, v); return true })
			rng.Shuffle(len(reps), func(a, b int) { reps[a], reps[b] = reps[b], reps[a] })

			g, _ := New(Config{})
			for _, v := range reps {
				parents := make([]PeerID, g.m)
				for i, tv := range v.Trees {
					parents[i] = tv.Parent // Origin when on fallback
				}
				ds, err := g.Restore(v.ID, Peer{Kind: v.Kind, Slots: v.Slots}, v.Home, parents)
				if err != nil {
					t.Fatal(err)
				}
				for _, d := range ds {
					if d.Op != Attach || d.Parent != before[d.Peer][d.Tree].Parent {
						t.Fatalf("restore changed a link: %v (was %+v)", d, before[d.Peer][d.Tree])
					}
				}
			}
			if ds := g.Settle(); len(ds) > 0 {
				t.Fatalf("Settle had work left: %v", ds)
			}
			if err := g.Check(); err != nil {
				t.Fatal(err)
			}
		})
	}
}
