package forest

// NodeView is a read-only copy of one peer's place in the forest.
type NodeView struct {
	ID    PeerID
	Kind  Kind
	Slots int
	// Home is the tree the peer is interior in, -1 if it has no slots.
	Home int
	// Children counts the peers it feeds, over all trees.
	Children int
	Trees    []TreeView
}

// TreeView is a peer's place in one tree.
type TreeView struct {
	Parent PeerID // meaningful when neither Fallback nor Pending
	Depth  int    // hops from the origin; 0 while pending
	// Fallback: the stripe comes from the origin over HTTP.
	Fallback bool
	// Pending: restored after a tracker restart, waiting for its parent.
	Pending bool
	// Borrowed: fed through a slot lent outside the parent's home tree.
	Borrowed bool
}

// Stats summarises a forest.
type Stats struct {
	Peers    int
	MaxDepth []int // per tree
	// FallbackPeers counts peers on fallback in at least one tree.
	FallbackPeers int
	Fallbacks     []int // per tree
	Borrowed      int   // borrowed edges, origin reserve included
	// OriginChildren per tree, reserve edges included.
	OriginChildren []int
}

// Node returns the view of one peer.
func (f *Forest) Node(id PeerID) (NodeView, bool) {
	n, ok := f.ids[id]
	if !ok {
		return NodeView{}, false
	}
	return f.view(n), true
}

// Each calls fn for every peer, in no particular order, until fn returns
// false.
func (f *Forest) Each(fn func(NodeView) bool) {
	for _, n := range f.ids {
		if !fn(f.view(n)) {
			return
		}
	}
}

func (f *Forest) view(n int32) NodeView {
	nd := &f.nodes[n]
	v := NodeView{ID: nd.id, Kind: nd.kind, Slots: int(nd.slots), Home: int(nd.home), Children: int(nd.nchild), Trees: make([]TreeView, f.m)}
	for i := range v.Trees {
		t := f.t(n, i)
		tv := &v.Trees[i]
		switch t.state {
		case stAttached:
			tv.Parent = f.nodes[t.parent].id
			tv.Borrowed = t.borrowed
		case stFallback:
			tv.Fallback = true
		case stPending:
			tv.Pending = true
			tv.Parent = t.pendParent
		}
		if t.reach {
			tv.Depth = int(t.depth)
		}
	}
	return v
}

// Parent returns id's parent in tree, and false if id is unknown, on
// fallback or pending there.
func (f *Forest) Parent(id PeerID, tree int) (PeerID, bool) {
	n, ok := f.ids[id]
	if !ok || tree < 0 || tree >= f.m {
		return 0, false
	}
	t := f.t(n, tree)
	if t.state != stAttached {
		return 0, false
	}
	return f.nodes[t.parent].id, true
}

// Stats returns counts over the whole forest. It costs O(trees), not
// O(peers): only FallbackPeers walks the fallback lists.
func (f *Forest) Stats() Stats {
	s := Stats{
		Peers:          len(f.ids),
		MaxDepth:       make([]int, f.m),
		Fallbacks:      make([]int, f.m),
		OriginChildren: make([]int, f.m),
		Borrowed:       f.reserve + f.lent,
	}
	var fb map[int32]bool
	for i := range f.trees {
		tr := &f.trees[i]
		for d := len(tr.depthCount) - 1; d >= 0; d-- {
			if tr.depthCount[d] > 0 {
				s.MaxDepth[i] = d
				break
			}
		}
		s.Fallbacks[i] = len(tr.fb)
		s.OriginChildren[i] = len(f.t(0, i).children)
		for _, n := range tr.fb {
			if fb == nil {
				fb = make(map[int32]bool)
			}
			fb[n] = true
		}
	}
	s.FallbackPeers = len(fb)
	return s
}
