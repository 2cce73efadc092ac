package forest

import (
	"errors"
	"fmt"
)

// Check verifies every invariant of the forest and returns the first
// violation found. It walks the whole forest: for tests and debugging.
//
// The invariants:
//   - parent and child links agree; no peer references a departed one;
//   - no cycles: every peer's chain of parents in every tree ends at the
//     origin, at a peer on fallback, or (between Restore and Settle) at a
//     peer waiting for its reported parent;
//   - a peer with slots is interior in at most its home tree: in any other
//     tree it feeds only childless leaves over borrowed edges, and sits on
//     a regular edge itself; a peer with no slots has no home and no
//     children;
//   - degrees within capacity: a peer's children over all trees ≤ its
//     slots; the origin's regular children ≤ OriginSlots per tree, its
//     reserve edges ≤ OriginReserve;
//   - depths are hops from the origin (a fallback root counts as 1);
//   - the internal indexes and counters match the forest.
func (f *Forest) Check() error {
	var errs []error
	bad := func(format string, a ...any) {
		if len(errs) < 10 {
			errs = append(errs, fmt.Errorf(format, a...))
		}
	}
	if len(f.ids)+1+len(f.freeIdx) != len(f.nodes) {
		bad("node count: %d ids + origin + %d free != %d nodes", len(f.ids), len(f.freeIdx), len(f.nodes))
	}
	for id, n := range f.ids {
		if !f.nodes[n].live || f.nodes[n].id != id {
			bad("id %d maps to node %d which is not it", id, n)
		}
	}
	spare := make([]int, f.m)
	lent, reserve := 0, 0
	for i := 0; i < f.m; i++ {
		spare[i] = f.cfg.OriginSlots - f.trees[i].regular
	}
	for n := range f.nodes {
		n := int32(n)
		nd := &f.nodes[n]
		if !nd.live {
			continue
		}
		if n != 0 {
			if nd.slots < 0 || int(nd.slots) > f.cfg.MaxSlots {
				bad("peer %d: slots %d outside [0, %d]", nd.id, nd.slots, f.cfg.MaxSlots)
			}
			if (nd.slots == 0) != (nd.home < 0) {
				bad("peer %d: slots %d but home %d", nd.id, nd.slots, nd.home)
			}
			if nd.nchild > nd.slots {
				bad("peer %d: %d children > %d slots", nd.id, nd.nchild, nd.slots)
			}
			if nd.home >= 0 {
				spare[nd.home] += int(nd.slots - nd.nchild)
			}
		}
		var kids int32
		regular := 0
		for i := 0; i < f.m; i++ {
			t := f.t(n, i)
			kids += int32(len(t.children))
			for _, c := range t.children {
				ct := f.t(c, i)
				if !f.nodes[c].live {
					bad("tree %d: peer %d has departed child slot %d", i, nd.id, c)
					continue
				}
				if ct.state != stAttached || ct.parent != n {
					bad("tree %d: peer %d lists %d as child, whose parent is %d (state %d)", i, nd.id, f.nodes[c].id, ct.parent, ct.state)
				}
				if ct.borrowed {
					if n == 0 {
						reserve++
					} else {
						lent++
					}
				} else if n == 0 {
					regular++
				}
				if n != 0 && int(nd.home) != i {
					if !ct.borrowed {
						bad("tree %d: peer %d (home %d) feeds %d over a regular edge outside its home", i, nd.id, nd.home, f.nodes[c].id)
					}
					if len(ct.children) > 0 {
						bad("tree %d: borrowed child %d of %d has children", i, f.nodes[c].id, nd.id)
					}
				}
				if ct.borrowed && int(f.nodes[c].home) == i {
					bad("tree %d: interior peer %d sits on a borrowed edge", i, f.nodes[c].id)
				}
				if ct.reach && t.reach && ct.depth != t.depth+1 {
					bad("tree %d: peer %d at depth %d under %d at depth %d", i, f.nodes[c].id, ct.depth, nd.id, t.depth)
				}
			}
			if n == 0 {
				continue
			}
			if len(t.children) > 0 && int(nd.home) != i && t.borrowed {
				bad("tree %d: lender %d sits on a borrowed edge", i, nd.id)
			}
			if err := f.checkChain(n, i); err != nil {
				bad("tree %d: peer %d: %v", i, nd.id, err)
			}
			f.checkIndex(n, i, bad)
		}
		if n == 0 {
			for i := 0; i < f.m; i++ {
				if f.trees[i].regular > f.cfg.OriginSlots {
					bad("tree %d: origin has %d regular children > %d slots", i, f.trees[i].regular, f.cfg.OriginSlots)
				}
				f.checkIndex(0, i, bad)
			}
			if regular != sumRegular(f) {
				bad("origin regular children %d, counters say %d", regular, sumRegular(f))
			}
		} else if kids != nd.nchild {
			bad("peer %d: %d children in trees, counter says %d", nd.id, kids, nd.nchild)
		}
	}
	if reserve != f.reserve || reserve > f.cfg.OriginReserve {
		bad("origin reserve edges %d, counter %d, limit %d", reserve, f.reserve, f.cfg.OriginReserve)
	}
	if lent != f.lent {
		bad("borrowed edges %d, counter %d", lent, f.lent)
	}
	for i := 0; i < f.m; i++ {
		if spare[i] != f.trees[i].spare {
			bad("tree %d: spare %d, counter %d", i, spare[i], f.trees[i].spare)
		}
		f.checkDepthCounts(i, bad)
	}
	return errors.Join(errs...)
}

func sumRegular(f *Forest) int {
	s := 0
	for i := range f.trees {
		s += f.trees[i].regular
	}
	return s
}

// checkChain walks n's parents in tree i to a root and checks depth and
// reachability on the way.
func (f *Forest) checkChain(n int32, i int) error {
	hops := int32(0)
	x := n
	for steps := 0; ; steps++ {
		if steps > len(f.nodes) {
			return errors.New("cycle")
		}
		t := f.t(x, i)
		switch {
		case x == 0:
			if !f.t(n, i).reach || f.t(n, i).depth != hops {
				return fmt.Errorf("reaches the origin in %d hops but depth %d reach %v", hops, f.t(n, i).depth, f.t(n, i).reach)
			}
			return nil
		case t.state == stFallback:
			if !f.t(n, i).reach || f.t(n, i).depth != hops+1 {
				return fmt.Errorf("under fallback root %d in %d hops but depth %d", f.nodes[x].id, hops, f.t(n, i).depth)
			}
			if t.fbpos < 0 || f.trees[i].fb[t.fbpos] != x {
				return fmt.Errorf("fallback root %d missing from the fallback list", f.nodes[x].id)
			}
			return nil
		case t.state == stPending:
			if f.t(n, i).reach {
				return fmt.Errorf("under pending %d but marked reachable", f.nodes[x].id)
			}
			return nil
		case t.state != stAttached:
			return fmt.Errorf("chain ends at %d in state %d: neither in the tree nor on fallback", f.nodes[x].id, t.state)
		}
		if !f.nodes[t.parent].live {
			return fmt.Errorf("chain reaches departed node slot %d", t.parent)
		}
		x = t.parent
		hops++
	}
}

func (f *Forest) checkIndex(n int32, i int, bad func(string, ...any)) {
	t := f.t(n, i)
	nd := &f.nodes[n]
	tr := &f.trees[i]
	var inFree, inLeaf bool
	if t.reach {
		if n == 0 {
			inFree = tr.regular < f.cfg.OriginSlots
		} else {
			inFree = int(nd.home) == i && nd.slots > nd.nchild
			inLeaf = int(nd.home) != i && t.state == stAttached && !t.borrowed && len(t.children) == 0
		}
	}
	if inFree != (t.fpos >= 0) || (t.fpos >= 0 && tr.free[t.depth][t.fpos] != n) {
		bad("tree %d: peer %d free-slot index wrong (want %v, pos %d)", i, nd.id, inFree, t.fpos)
	}
	if inLeaf != (t.lpos >= 0) || (t.lpos >= 0 && tr.leaves[t.depth][t.lpos] != n) {
		bad("tree %d: peer %d leaf index wrong (want %v, pos %d)", i, nd.id, inLeaf, t.lpos)
	}
	if inFree && int(t.depth) < tr.freeMin {
		bad("tree %d: free slot at depth %d above freeMin %d", i, t.depth, tr.freeMin)
	}
	if inLeaf && int(t.depth) < tr.leafMin {
		bad("tree %d: leaf at depth %d above leafMin %d", i, t.depth, tr.leafMin)
	}
}

func (f *Forest) checkDepthCounts(i int, bad func(string, ...any)) {
	counts := make([]int32, len(f.trees[i].depthCount))
	for n := range f.nodes {
		t := f.t(int32(n), i)
		if f.nodes[n].live && t.reach {
			if int(t.depth) >= len(counts) {
				bad("tree %d: depth %d beyond depth counts", i, t.depth)
				continue
			}
			counts[t.depth]++
		}
	}
	for d, c := range counts {
		if c != f.trees[i].depthCount[d] {
			bad("tree %d: %d nodes at depth %d, counter %d", i, c, d, f.trees[i].depthCount[d])
		}
	}
}
