package forest

import (
	"fmt"
)

// Config sets the shape of a forest. The zero value of every field means
// its documented default.
type Config struct {
	// Trees is M, the number of stripes and so of trees. Default 4.
	Trees int
	// OriginSlots is how many children the origin feeds in each tree.
	// Default 2. With k data stripes of M, the origin then sends about
	// Trees*OriginSlots/k copies of the stream, whatever the audience.
	OriginSlots int
	// OriginReserve is a pool of extra origin slots, shared by all trees,
	// spent on leaves of a tree that has no free slot before any peer lends
	// one. Default 0 (negative is invalid).
	OriginReserve int
	// MaxSlots caps a peer's slots, so one peer that claims a huge upload
	// cannot become the single point of failure for a large subtree.
	// Default 16.
	MaxSlots int
}

const (
	defaultTrees       = 4
	defaultOriginSlots = 2
	defaultMaxSlots    = 16
	maxTrees           = 64
	// drainLimit bounds how many peers leave fallback per tree per event,
	// so one event's cost stays bounded.
	drainLimit = 64
	// lenderScan bounds how many candidate lenders one placement looks at.
	lenderScan = 32
)

func (c Config) withDefaults() Config {
	if c.Trees == 0 {
		c.Trees = defaultTrees
	}
	if c.OriginSlots == 0 {
		c.OriginSlots = defaultOriginSlots
	}
	if c.MaxSlots == 0 {
		c.MaxSlots = defaultMaxSlots
	}
	return c
}

// Validate reports the first field that is out of range, by name.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Trees < 1 || c.Trees > maxTrees:
		return fmt.Errorf("forest: Trees must be in [1, %d], got %d", maxTrees, c.Trees)
	case c.OriginSlots < 1:
		return fmt.Errorf("forest: OriginSlots must be ≥ 1, got %d", c.OriginSlots)
	case c.OriginReserve < 0:
		return fmt.Errorf("forest: OriginReserve must be ≥ 0, got %d", c.OriginReserve)
	case c.MaxSlots < 1 || c.MaxSlots > 1<<16:
		return fmt.Errorf("forest: MaxSlots must be in [1, 65536], got %d", c.MaxSlots)
	}
	return nil
}

// A tree node's state in one tree.
const (
	stDetached uint8 = iota // transient: being moved
	stAttached              // has a parent
	stFallback              // root of its own subtree, fed by HTTP
	stPending               // restored, waiting for its reported parent
)

// tnode is a peer's place in one tree.
type tnode struct {
	children   []int32
	pendParent PeerID // stPending: the parent it reported
	parent     int32  // node index; -1 when not attached
	depth      int32  // hops from the origin; meaningful when reach
	fpos       int32  // index in tree.free[depth], -1 if absent
	lpos       int32  // index in tree.leaves[depth], -1 if absent
	fbpos      int32  // index in tree.fb, -1 if absent
	state      uint8
	borrowed   bool // the edge to parent is a borrowed (non-home) slot
	reach      bool // connected to the origin or a fallback root
}

type node struct {
	id     PeerID
	seq    uint64 // join order: lower is longer-lived
	slots  int32
	nchild int32 // children over all trees
	home   int8  // home tree, -1 when the peer has no slots
	kind   Kind
	live   bool
}

// tree holds the indexes that make "shallowest free slot" O(1) amortized.
type tree struct {
	free       [][]int32 // by depth: nodes with a free regular slot here
	leaves     [][]int32 // by depth: displaceable leaves
	freeMin    int       // no free slot above this depth
	leafMin    int
	fb         []int32 // peers on fallback for this tree
	depthCount []int32 // reachable nodes per depth
	spare      int     // free slots of peers homed here, and the origin's
	regular    int     // origin's regular children here
}

// Forest is the distribution forest of one channel. Create it with New.
type Forest struct {
	cfg     Config
	m       int
	nodes   []node
	tn      []tnode // nodes[n]'s tnode for tree i is tn[n*m+i]
	trees   []tree
	ids     map[PeerID]int32
	freeIdx []int32
	seq     uint64
	reserve int // origin reserve slots in use
	lent    int // borrowed edges from peers
	waiting map[PeerID][]pendRef
	out     []Decision
	scratch []int32 // orphans in Leave
	bounds  []int   // per-tree ranges of scratch in Leave
	stack   []int32 // subtree walks
}

type pendRef struct {
	n    int32
	tree int
}

// New returns an empty forest: the origin alone, at the root of every tree.
func New(cfg Config) (*Forest, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	f := &Forest{
		cfg:     cfg,
		m:       cfg.Trees,
		trees:   make([]tree, cfg.Trees),
		ids:     make(map[PeerID]int32),
		waiting: make(map[PeerID][]pendRef),
	}
	f.nodes = append(f.nodes, node{id: Origin, home: -1, live: true})
	for i := 0; i < f.m; i++ {
		f.tn = append(f.tn, tnode{parent: -1, fpos: -1, lpos: -1, fbpos: -1, state: stAttached, reach: true})
		f.trees[i].spare = cfg.OriginSlots
		f.trees[i].depthCount = []int32{1}
		f.reindex(0, i)
	}
	return f, nil
}

// Trees returns M.
func (f *Forest) Trees() int { return f.m }

// Len returns the number of peers, the origin excluded.
func (f *Forest) Len() int { return len(f.ids) }

func (f *Forest) t(n int32, i int) *tnode { return &f.tn[int(n)*f.m+i] }

// Join adds a peer and places it in every tree.
func (f *Forest) Join(id PeerID, p Peer) ([]Decision, error) {
	f.out = f.out[:0]
	n, err := f.add(id, p)
	if err != nil {
		return nil, err
	}
	nd := &f.nodes[n]
	if nd.home >= 0 {
		f.place(int(nd.home), n, -1, true)
	}
	for i := 0; i < f.m; i++ {
		if i != int(nd.home) {
			f.place(i, n, -1, true)
		}
	}
	f.drainAll()
	return f.out, nil
}

// add creates the node for id, detached in every tree.
func (f *Forest) add(id PeerID, p Peer) (int32, error) {
	if id == Origin {
		return 0, ErrOrigin
	}
	if _, ok := f.ids[id]; ok {
		return 0, fmt.Errorf("%w: %d", ErrExists, id)
	}
	slots := p.Slots
	if slots < 0 {
		slots = 0
	}
	if slots > f.cfg.MaxSlots {
		slots = f.cfg.MaxSlots
	}
	var n int32
	if k := len(f.freeIdx); k > 0 {
		n = f.freeIdx[k-1]
		f.freeIdx = f.freeIdx[:k-1]
	} else {
		n = int32(len(f.nodes))
		f.nodes = append(f.nodes, node{})
		for i := 0; i < f.m; i++ {
			f.tn = append(f.tn, tnode{})
		}
	}
	f.seq++
	f.nodes[n] = node{id: id, seq: f.seq, slots: int32(slots), home: -1, kind: p.Kind, live: true}
	for i := 0; i < f.m; i++ {
		t := f.t(n, i)
		*t = tnode{children: t.children[:0], parent: -1, fpos: -1, lpos: -1, fbpos: -1, state: stDetached}
	}
	if slots > 0 {
		f.nodes[n].home = int8(f.leastSpare())
	}
	f.account(n, 1)
	f.ids[id] = n
	return n, nil
}

// leastSpare returns the tree with the fewest spare slots: a new interior
// peer goes where capacity is scarcest.
func (f *Forest) leastSpare() int {
	best := 0
	for i := 1; i < f.m; i++ {
		if f.trees[i].spare < f.trees[best].spare {
			best = i
		}
	}
	return best
}

// account adds (sign 1) or removes (sign -1) n's spare slots from its home
// tree's count. Callers bracket every change to slots, nchild or home.
func (f *Forest) account(n int32, sign int) {
	if n == 0 {
		return
	}
	nd := &f.nodes[n]
	if nd.home >= 0 {
		f.trees[nd.home].spare += sign * int(nd.slots-nd.nchild)
	}
}

// Leave removes a peer and repairs every tree it fed.
func (f *Forest) Leave(id PeerID) ([]Decision, error) {
	f.out = f.out[:0]
	n, ok := f.ids[id]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknown, id)
	}
	orphans := f.scratch[:0]
	bounds := f.bounds[:0] // orphans[bounds[i]:bounds[i+1]] are tree i's
	for i := 0; i < f.m; i++ {
		bounds = append(bounds, len(orphans))
		t := f.t(n, i)
		switch t.state {
		case stAttached:
			f.unlink(i, n, true)
		case stFallback:
			f.unFallback(i, n)
		}
		t.state = stDetached
		for len(t.children) > 0 {
			c := t.children[len(t.children)-1]
			orphans = append(orphans, c)
			f.unlink(i, c, false)
		}
	}
	bounds = append(bounds, len(orphans))
	f.account(n, -1)
	f.nodes[n].live = false
	delete(f.ids, id)
	f.freeIdx = append(f.freeIdx, n)
	for i := 0; i < f.m; i++ {
		tree := orphans[bounds[i]:bounds[i+1]]
		f.sortOrphans(i, tree)
		for _, c := range tree {
			f.place(i, c, -1, true)
		}
	}
	f.scratch, f.bounds = orphans[:0], bounds[:0]
	f.resolveWaiting(id, -1)
	f.drainAll()
	return f.out, nil
}

// sortOrphans orders orphans so that the best parents are placed first:
// interior peers of this tree, natives, more slots, longer-lived. The
// first orphan usually takes the departed peer's place and adopts its
// siblings, which keeps the tree as short as it was.
func (f *Forest) sortOrphans(i int, s []int32) {
	better := func(a, b int32) bool {
		na, nb := &f.nodes[a], &f.nodes[b]
		ia, ib := int(na.home) == i, int(nb.home) == i
		if ia != ib {
			return ia
		}
		if na.kind != nb.kind {
			return na.kind == Native
		}
		if na.slots != nb.slots {
			return na.slots > nb.slots
		}
		return na.seq < nb.seq
	}
	for x := 1; x < len(s); x++ {
		for y := x; y > 0 && better(s[y], s[y-1]); y-- {
			s[y], s[y-1] = s[y-1], s[y]
		}
	}
}

// Complain handles a child's report that its parent in tree sends nothing:
// the child, with its subtree, moves to another parent in that tree.
func (f *Forest) Complain(child PeerID, tree int) ([]Decision, error) {
	f.out = f.out[:0]
	n, ok := f.ids[child]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknown, child)
	}
	if tree < 0 || tree >= f.m {
		return nil, fmt.Errorf("%w: %d (have %d)", ErrTree, tree, f.m)
	}
	t := f.t(n, tree)
	if t.state != stAttached {
		return f.out, nil
	}
	p := t.parent
	f.unlink(tree, n, true)
	f.place(tree, n, p, true)
	f.drain(tree, n)
	return f.out, nil
}

// SetSlots records a new capacity for a peer. Fewer slots than children
// sheds children (each re-placed elsewhere); zero makes it a leaf in every
// tree; slots for a peer that had none give it a home tree, where it moves
// up if a leaf sits above its place.
func (f *Forest) SetSlots(id PeerID, slots int) ([]Decision, error) {
	f.out = f.out[:0]
	n, ok := f.ids[id]
	if !ok {
		return nil, fmt.Errorf("%w: %d", ErrUnknown, id)
	}
	if slots < 0 {
		slots = 0
	}
	if slots > f.cfg.MaxSlots {
		slots = f.cfg.MaxSlots
	}
	nd := &f.nodes[n]
	if int(nd.slots) == slots {
		return f.out, nil
	}
	f.account(n, -1)
	nd.slots = int32(slots)
	f.account(n, 1)

	// Shed children beyond the new capacity: borrowed ones first, they are
	// single leaves.
	type shed struct {
		tree int
		c    int32
	}
	var sheds []shed
	for pass := 0; pass < 2 && nd.nchild > nd.slots; pass++ {
		for i := 0; i < f.m && nd.nchild > nd.slots; i++ {
			if (pass == 0) == (i == int(nd.home)) {
				continue
			}
			t := f.t(n, i)
			for len(t.children) > 0 && nd.nchild > nd.slots {
				c := t.children[len(t.children)-1]
				f.unlink(i, c, true)
				sheds = append(sheds, shed{i, c})
			}
		}
	}

	switch {
	case slots == 0 && nd.home >= 0:
		h := int(nd.home)
		f.account(n, -1)
		nd.home = -1
		f.reindex(n, h)
	case slots > 0 && nd.home < 0:
		h := f.leastSpare()
		nd.home = int8(h)
		f.account(n, 1)
		t := f.t(n, h)
		// Borrowed children in the new home tree become regular ones.
		for _, c := range t.children {
			f.t(c, h).borrowed = false
		}
		switch t.state {
		case stAttached:
			f.unlink(h, n, true)
			f.place(h, n, -1, true)
		case stFallback:
			f.reindex(n, h)
		}
	default:
		if nd.home >= 0 {
			f.reindex(n, int(nd.home))
		}
	}
	for _, s := range sheds {
		f.place(s.tree, s.c, n, true)
	}
	f.drainAll()
	return f.out, nil
}

// Restore re-creates a peer after a tracker restart from what the peer
// reports: its home tree and its parent in each tree. A reported edge is
// kept when it is still consistent (parent known, capacity left, no cycle);
// an edge to a parent that has not reported yet waits until that parent
// restores or Settle is called; anything else is placed as on a join.
// Working links are thus kept, and the Attach decisions for kept edges
// repeat what the peers already have.
func (f *Forest) Restore(id PeerID, p Peer, home int, parents []PeerID) ([]Decision, error) {
	f.out = f.out[:0]
	if len(parents) != f.m {
		return nil, fmt.Errorf("%w: %d parents reported, forest has %d trees", ErrTree, len(parents), f.m)
	}
	n, err := f.add(id, p)
	if err != nil {
		return nil, err
	}
	nd := &f.nodes[n]
	if nd.slots > 0 && home >= 0 && home < f.m && int(nd.home) != home {
		f.account(n, -1)
		nd.home = int8(home)
		f.account(n, 1)
	}
	for i, q := range parents {
		qn, known := f.ids[q]
		if q == Origin {
			qn, known = 0, true
		}
		if !known {
			t := f.t(n, i)
			t.state = stPending
			t.pendParent = q
			f.waiting[q] = append(f.waiting[q], pendRef{n, i})
			continue
		}
		f.adoptOrPlace(i, qn, n)
	}
	f.resolveWaiting(id, n)
	f.drainAll()
	return f.out, nil
}

// resolveWaiting attaches the peers that reported id as their parent:
// under n if it can take them, else wherever there is room (n < 0: id has
// left).
func (f *Forest) resolveWaiting(id PeerID, n int32) {
	refs, ok := f.waiting[id]
	if !ok {
		return
	}
	delete(f.waiting, id)
	for _, r := range refs {
		t := f.t(r.n, r.tree)
		if !f.nodes[r.n].live || t.state != stPending || t.pendParent != id {
			continue
		}
		t.state = stDetached
		if n < 0 {
			f.place(r.tree, r.n, -1, true)
		} else {
			f.adoptOrPlace(r.tree, n, r.n)
		}
	}
}

// adoptOrPlace attaches detached c under q in tree i if that edge is
// consistent, and places c as on a join otherwise.
func (f *Forest) adoptOrPlace(i int, q, c int32) {
	if borrowed, ok := f.canAdopt(i, q, c); ok {
		f.link(i, c, q, borrowed)
		return
	}
	f.place(i, c, -1, true)
}

// canAdopt reports whether q may feed c in tree i, and whether that edge
// is borrowed.
func (f *Forest) canAdopt(i int, q, c int32) (borrowed, ok bool) {
	if q == c {
		return false, false
	}
	// q must not hang below c.
	for x := q; x >= 0; x = f.t(x, i).parent {
		if x == c {
			return false, false
		}
	}
	qt := f.t(q, i)
	if q == 0 {
		return false, f.trees[i].regular < f.cfg.OriginSlots
	}
	qn, cn := &f.nodes[q], &f.nodes[c]
	if qn.slots-qn.nchild <= 0 {
		return false, false
	}
	if int(qn.home) == i {
		return false, true
	}
	// A borrowed edge feeds only a childless leaf, from a lender that is not
	// itself on a borrowed edge.
	ok = int(cn.home) != i && len(f.t(c, i).children) == 0 && !qt.borrowed
	return true, ok
}

// Settle ends the restore window: every peer still waiting for a parent
// that never came back is placed as on a join.
func (f *Forest) Settle() []Decision {
	f.out = f.out[:0]
	for id := range f.waiting {
		f.resolveWaiting(id, -1)
	}
	f.drainAll()
	return f.out
}

// Linked reports whether a feeds b or b feeds a in some tree: the pairs
// the tracker relays signaling between.
func (f *Forest) Linked(a, b PeerID) bool {
	na, oka := f.ids[a]
	nb, okb := f.ids[b]
	if a == Origin {
		na, oka = 0, true
	}
	if b == Origin {
		nb, okb = 0, true
	}
	if !oka || !okb || na == nb {
		return false
	}
	for i := 0; i < f.m; i++ {
		ta, tb := f.t(na, i), f.t(nb, i)
		if (ta.state == stAttached && ta.parent == nb) || (tb.state == stAttached && tb.parent == na) {
			return true
		}
	}
	return false
}

// place puts detached r, with its subtree, into tree i, never under excl.
// With allowFallback false it returns false instead of falling back.
func (f *Forest) place(i int, r int32, excl int32, allowFallback bool) bool {
	nd := &f.nodes[r]
	p, dp := f.findFree(i, excl)
	if int(nd.home) == i {
		// An interior peer sits above leaves: it takes the place of a leaf
		// shallower than the free slot (or of any leaf when there is no
		// free slot) and adopts it if it can; otherwise the leaf goes on to
		// the free slot or through the overflow chain.
		if l := f.findLeaf(i, excl, dp, p >= 0); l >= 0 {
			if nd.slots > nd.nchild {
				f.displace(i, r, l)
				return true
			}
			pl := f.t(l, i).parent
			f.unlink(i, l, true)
			f.link(i, r, pl, false)
			// r has taken l's slot, so l must land somewhere, fallback included.
			f.place(i, l, excl, true)
			return true
		}
		if p >= 0 {
			f.link(i, r, p, false)
			return true
		}
		// No free slot and no leaf: the top of the tree is held by peers
		// homed elsewhere, whose children hang on borrowed edges. An
		// interior peer takes the place of one of them and adopts it, with
		// its subtree, rather than leaving its own tree on HTTP fallback.
		if g := f.foreignTop(i, r, excl); g >= 0 && nd.slots > nd.nchild {
			f.displace(i, r, g)
			return true
		}
	} else {
		if p >= 0 {
			f.link(i, r, p, false)
			return true
		}
		if len(f.t(r, i).children) == 0 {
			if excl != 0 && f.reserve < f.cfg.OriginReserve {
				f.link(i, r, 0, true)
				return true
			}
			if q := f.findLender(i, excl); q >= 0 {
				f.link(i, r, q, true)
				return true
			}
		}
	}
	if !allowFallback {
		return false
	}
	f.setFallback(i, r, true)
	return true
}

// foreignTop returns a child of the origin in tree i, on a regular edge,
// that is homed in another tree and is not r or excl; -1 if none.
func (f *Forest) foreignTop(i int, r, excl int32) int32 {
	for _, c := range f.t(0, i).children {
		t := f.t(c, i)
		if c != r && c != excl && !t.borrowed && int(f.nodes[c].home) != i && t.reach {
			return c
		}
	}
	return -1
}

// displace puts interior r in leaf l's place in tree i and l under r.
func (f *Forest) displace(i int, r, l int32) {
	p := f.t(l, i).parent
	f.unlink(i, l, true)
	f.link(i, r, p, false)
	f.link(i, l, r, false)
}

// findFree returns the shallowest node other than excl with a free regular
// slot in tree i, and its depth; -1 if none.
func (f *Forest) findFree(i int, excl int32) (int32, int) {
	tr := &f.trees[i]
	for d := tr.freeMin; d < len(tr.free); d++ {
		b := tr.free[d]
		if len(b) == 0 {
			if d == tr.freeMin {
				tr.freeMin++
			}
			continue
		}
		for k := len(b) - 1; k >= 0; k-- {
			if b[k] != excl {
				return b[k], d
			}
		}
	}
	return -1, 0
}

// findLeaf returns the shallowest displaceable leaf of tree i whose parent
// is not excl; with bounded, only one shallower than maxDepth.
func (f *Forest) findLeaf(i int, excl int32, maxDepth int, bounded bool) int32 {
	tr := &f.trees[i]
	for d := tr.leafMin; d < len(tr.leaves); d++ {
		if bounded && d >= maxDepth {
			return -1
		}
		b := tr.leaves[d]
		if len(b) == 0 {
			if d == tr.leafMin {
				tr.leafMin++
			}
			continue
		}
		for k := len(b) - 1; k >= 0; k-- {
			if f.t(b[k], i).parent != excl {
				return b[k]
			}
		}
	}
	return -1
}

// findLender returns a peer homed in another tree, with spare upload,
// that sits in tree i on a regular edge, as shallow as a bounded search
// finds; -1 if none.
func (f *Forest) findLender(i int, excl int32) int32 {
	best, bestDepth, seen := int32(-1), int32(0), 0
	for j := 0; j < f.m && seen < lenderScan; j++ {
		if j == i {
			continue
		}
		tr := &f.trees[j]
		for d := tr.freeMin; d < len(tr.free) && seen < lenderScan; d++ {
			for _, q := range tr.free[d] {
				if q == 0 || q == excl {
					continue
				}
				seen++
				t := f.t(q, i)
				if t.reach && t.state == stAttached && !t.borrowed && (best < 0 || t.depth < bestDepth) {
					best, bestDepth = q, t.depth
				}
				if seen >= lenderScan {
					break
				}
			}
		}
	}
	return best
}

// link makes p the parent of detached c in tree i.
func (f *Forest) link(i int, c, p int32, borrowed bool) {
	t := f.t(c, i)
	t.parent = p
	t.state = stAttached
	t.borrowed = borrowed
	pt := f.t(p, i)
	pt.children = append(pt.children, c)
	f.addChild(i, p, borrowed, 1)
	f.reindex(p, i)
	if pt.reach {
		f.setReach(c, i, pt.depth+1)
	}
	f.out = append(f.out, Decision{Op: Attach, Tree: i, Peer: f.nodes[c].id, Parent: f.nodes[p].id})
}

// unlink detaches c from its parent in tree i; c keeps its subtree.
func (f *Forest) unlink(i int, c int32, emit bool) {
	t := f.t(c, i)
	p := t.parent
	pt := f.t(p, i)
	for k, x := range pt.children {
		if x == c {
			last := len(pt.children) - 1
			pt.children[k] = pt.children[last]
			pt.children = pt.children[:last]
			break
		}
	}
	f.addChild(i, p, t.borrowed, -1)
	t.parent = -1
	t.state = stDetached
	t.borrowed = false
	f.clearReach(c, i)
	f.reindex(p, i)
	if emit {
		f.out = append(f.out, Decision{Op: Detach, Tree: i, Peer: f.nodes[c].id, Parent: f.nodes[p].id})
	}
}

// addChild counts a child edge (delta ±1) against p's capacity.
func (f *Forest) addChild(i int, p int32, borrowed bool, delta int) {
	if p == 0 {
		if borrowed {
			f.reserve += delta
		} else {
			f.trees[i].regular += delta
			f.trees[i].spare -= delta
		}
		return
	}
	if borrowed {
		f.lent += delta
	}
	f.account(p, -1)
	f.nodes[p].nchild += int32(delta)
	f.account(p, 1)
	if h := int(f.nodes[p].home); h >= 0 && h != i {
		f.reindex(p, h)
	}
}

func (f *Forest) setFallback(i int, r int32, emit bool) {
	t := f.t(r, i)
	t.state = stFallback
	t.parent = -1
	tr := &f.trees[i]
	t.fbpos = int32(len(tr.fb))
	tr.fb = append(tr.fb, r)
	f.setReach(r, i, 1)
	if emit {
		f.out = append(f.out, Decision{Op: Fallback, Tree: i, Peer: f.nodes[r].id, Parent: Origin})
	}
}

func (f *Forest) unFallback(i int, r int32) {
	t := f.t(r, i)
	tr := &f.trees[i]
	last := int32(len(tr.fb) - 1)
	moved := tr.fb[last]
	tr.fb[t.fbpos] = moved
	f.t(moved, i).fbpos = t.fbpos
	tr.fb = tr.fb[:last]
	t.fbpos = -1
	t.state = stDetached
	f.clearReach(r, i)
}

// drainAll moves peers off HTTP fallback wherever a slot has opened.
func (f *Forest) drainAll() { f.drain(-1, -1) }

// drain is drainAll but leaves peer hold alone in tree holdTree: a peer that
// just complained about its only possible parent stays on fallback rather
// than going straight back.
func (f *Forest) drain(holdTree int, hold int32) {
	for i := 0; i < f.m; i++ {
		tr := &f.trees[i]
		for k := 0; k < drainLimit && len(tr.fb) > 0; k++ {
			r := tr.fb[len(tr.fb)-1]
			if i == holdTree && r == hold {
				if len(tr.fb) == 1 {
					break
				}
				// Look at the next one instead; hold stays where it is.
				r = tr.fb[len(tr.fb)-2]
			}
			f.unFallback(i, r)
			mark := len(f.out)
			if !f.place(i, r, -1, false) {
				f.out = f.out[:mark]
				f.setFallback(i, r, false)
				break
			}
		}
	}
}

// setReach marks r's subtree as connected, with r at depth d, and indexes it.
func (f *Forest) setReach(r int32, i int, d int32) {
	stack := append(f.stack[:0], r)
	f.t(r, i).depth = d
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		t := f.t(x, i)
		if !t.reach {
			t.reach = true
			f.countDepth(i, t.depth, 1)
		}
		f.reindex(x, i)
		for _, c := range t.children {
			f.t(c, i).depth = t.depth + 1
			stack = append(stack, c)
		}
	}
	f.stack = stack[:0]
}

// clearReach marks r's subtree as disconnected and takes it out of the
// indexes, so nothing is placed inside a subtree that is being moved.
func (f *Forest) clearReach(r int32, i int) {
	if !f.t(r, i).reach {
		return
	}
	stack := append(f.stack[:0], r)
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		t := f.t(x, i)
		if t.reach {
			t.reach = false
			f.countDepth(i, t.depth, -1)
		}
		f.reindex(x, i)
		stack = append(stack, t.children...)
	}
	f.stack = stack[:0]
}

func (f *Forest) countDepth(i int, d int32, delta int32) {
	tr := &f.trees[i]
	for int(d) >= len(tr.depthCount) {
		tr.depthCount = append(tr.depthCount, 0)
	}
	tr.depthCount[d] += delta
}

// reindex brings n's membership of tree i's free-slot and leaf indexes in
// line with its state.
func (f *Forest) reindex(n int32, i int) {
	t := f.t(n, i)
	nd := &f.nodes[n]
	var inFree, inLeaf bool
	if t.reach && nd.live {
		if n == 0 {
			inFree = f.trees[i].regular < f.cfg.OriginSlots
		} else {
			inFree = int(nd.home) == i && nd.slots > nd.nchild
			inLeaf = int(nd.home) != i && t.state == stAttached && !t.borrowed && len(t.children) == 0
		}
	}
	tr := &f.trees[i]
	// A node's depth only changes while it is unreachable, and so outside
	// both indexes: its bucket is always tr.free[t.depth].
	if t.fpos >= 0 && !inFree {
		f.remove(tr.free[t.depth], &t.fpos, i, true)
		tr.free[t.depth] = tr.free[t.depth][:len(tr.free[t.depth])-1]
	}
	if t.lpos >= 0 && !inLeaf {
		f.remove(tr.leaves[t.depth], &t.lpos, i, false)
		tr.leaves[t.depth] = tr.leaves[t.depth][:len(tr.leaves[t.depth])-1]
	}
	if inFree && t.fpos < 0 {
		t.fpos = insert(&tr.free, n, t.depth)
		if int(t.depth) < tr.freeMin {
			tr.freeMin = int(t.depth)
		}
	}
	if inLeaf && t.lpos < 0 {
		t.lpos = insert(&tr.leaves, n, t.depth)
		if int(t.depth) < tr.leafMin {
			tr.leafMin = int(t.depth)
		}
	}
}

// insert appends n to the bucket for depth d and returns its position.
func insert(buckets *[][]int32, n int32, d int32) int32 {
	for int(d) >= len(*buckets) {
		*buckets = append(*buckets, nil)
	}
	b := &(*buckets)[d]
	*b = append(*b, n)
	return int32(len(*b) - 1)
}

// remove swaps the node at *pos out of bucket b (the caller shortens b by one) and fixes
// the position of the node moved into its place.
func (f *Forest) remove(b []int32, pos *int32, i int, free bool) {
	last := b[len(b)-1]
	b[*pos] = last
	if free {
		f.t(last, i).fpos = *pos
	} else {
		f.t(last, i).lpos = *pos
	}
	*pos = -1
}
