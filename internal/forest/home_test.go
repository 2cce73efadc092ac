package forest

import "testing"

// A small swarm whose origin feeds one peer per tree: the top of a tree is
// often held by a peer homed elsewhere, with borrowed children under it. A
// peer that joins with that tree as its home must still get into it, not
// sit on HTTP fallback while it has upload to give. (Seen in the browser
// end-to-end test and on the dashboard: one peer on fallback all run.)
func TestInteriorPeerNeverFallsBackInItsHomeTree(t *testing.T) {
	for _, originSlots := range []int{1, 2} {
		for n := 2; n <= 12; n++ {
			f, err := New(Config{Trees: 4, OriginSlots: originSlots})
			if err != nil {
				t.Fatal(err)
			}
			for id := PeerID(1); id <= PeerID(n); id++ {
				if _, err := f.Join(id, Peer{Slots: 15}); err != nil {
					t.Fatal(err)
				}
			}
			for id := PeerID(1); id <= PeerID(n); id++ {
				v, _ := f.Node(id)
				for i, tr := range v.Trees {
					if tr.Fallback {
						t.Errorf("origin slots %d, %d peers: peer %d (home %d) is on fallback in tree %d", originSlots, n, id, v.Home, i)
					}
				}
			}
			if err := f.Check(); err != nil {
				t.Fatalf("origin slots %d, %d peers: %v", originSlots, n, err)
			}
		}
	}
}
