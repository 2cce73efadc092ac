package tracker

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"github.com/coopcast/coopcast/internal/proto"
	"strings"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/wire"
)

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

// evidence returns an unsigned manifest of a 4-shard chunk of channel
// and a fragment of shard whose bytes do not match it.
func evidence(t testing.TB, channel string, shard uint8) (wire.Manifest, []byte) {
	t.Helper()
	shards := make([][]byte, 4)
	for i := range shards {
		shards[i] = bytes.Repeat([]byte{byte(i + 1)}, 100)
	}
	m := wire.Manifest{Seq: 9, Timestamp: 1, Length: 300, M: 4, K: 3, ShardSize: 100, Epoch: 1, Hashes: wire.HashShards(shards)}
	bad := bytes.Repeat([]byte{0xee}, 100)
	return m, wire.AppendFragment(nil, wire.Fragment{Seq: 9, Shard: shard, Total: 100, Payload: bad})
}

// TestCheckEvidence: the tracker accepts as evidence only bytes that
// prove bad data against the channel's own key.
func TestCheckEvidence(t *testing.T) {
	ch := &channel{id: "c", publicKey: testKey}
	man, bad := evidence(t, "c", 2)
	good, err := wire.SignManifest(testPriv, "c", &man)
	if err != nil {
		t.Fatal(err)
	}
	other := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))
	forged, _ := wire.SignManifest(other, "c", &man)
	otherChannel, _ := wire.SignManifest(testPriv, "d", &man)
	fine := wire.AppendFragment(nil, wire.Fragment{Seq: 9, Shard: 2, Total: 100, Payload: bytes.Repeat([]byte{3}, 100)})
	for _, tc := range []struct {
		name     string
		m        proto.Message
		tree     int
		want     string // the reason proven; "" for none
		whyNot   string // part of the error when none
		badKeyCh bool
	}{
		{name: "no evidence", m: proto.Message{}, tree: 2, whyNot: "no evidence"},
		{name: "forged manifest", m: proto.Message{Manifest: b64(forged)}, tree: 0, want: reasonForged},
		{name: "manifest signed for another channel", m: proto.Message{Manifest: b64(otherChannel)}, tree: 0, want: reasonForged},
		{name: "good manifest alone", m: proto.Message{Manifest: b64(good)}, tree: 0, whyNot: "signature is good"},
		{name: "garbage manifest", m: proto.Message{Manifest: b64([]byte{1, 2, 3})}, tree: 0, whyNot: "does not parse"},
		{name: "not base64", m: proto.Message{Manifest: "%%%"}, tree: 0, whyNot: "base64"},
		{name: "bad fragment", m: proto.Message{Manifest: b64(good), Fragment: b64(bad)}, tree: 2, want: reasonCorruptShard},
		{name: "good fragment", m: proto.Message{Manifest: b64(good), Fragment: b64(fine)}, tree: 2, whyNot: "matches"},
		{name: "fragment of another tree", m: proto.Message{Manifest: b64(good), Fragment: b64(bad)}, tree: 1, whyNot: "tree 2"},
		{name: "fragment against a forged manifest", m: proto.Message{Manifest: b64(forged), Fragment: b64(bad)}, tree: 2, whyNot: "channel's signature"},
		{name: "channel key unknown", m: proto.Message{Manifest: b64(forged)}, tree: 0, badKeyCh: true, whyNot: "not an Ed25519 key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ch
			if tc.badKeyCh {
				c = &channel{id: "c", publicKey: "bm9wZQ=="}
			}
			got, err := c.checkEvidence(tc.m, tc.tree)
			if got != tc.want {
				t.Fatalf("proves %q (err %v), want %q", got, err, tc.want)
			}
			if tc.want == "" && (err == nil || !strings.Contains(err.Error(), tc.whyNot)) {
				t.Fatalf("error %v, want one that says %q", err, tc.whyNot)
			}
		})
	}
}

// TestProbationSlots: a peer that declares 10 Gbit/s gets two slots,
// and one more for each child that confirms its delivery, up to what its
// upload offers.
func TestProbationSlots(t *testing.T) {
	srv, base := startServer(t, Config{})
	origin := publish(t, base, "p")
	big := joinWith(t, base, "p", 10_000_000, true) // 16 slots' worth
	checkFor(t, 2*time.Second, "placed", func() error { return agree(srv, "p", origin, []*tclient{big}) })
	if got := slotsOf(srv, "p", big.peerID()); got != DefaultProbationSlots {
		t.Fatalf("a new peer got %d slots, want %d whatever it declares", got, DefaultProbationSlots)
	}
	// New viewers keep coming; each child under it confirms, and its
	// slots grow one per confirmation, so later viewers find room.
	var kids []*tclient
	confirmed := 0
	for round := 0; round < 4; round++ {
		for i := 0; i < 3; i++ {
			kids = append(kids, joinWith(t, base, "p", 0, true))
		}
		all := append([]*tclient{big}, kids...)
		checkFor(t, 2*time.Second, "views agree", func() error { return agree(srv, "p", origin, all) })
		for tree, ks := range childrenOf(srv, "p", big.peerID(), kids) {
			for _, k := range ks {
				k.send(proto.Message{Type: proto.TypeEdgeOpen, Tree: intp(tree), Parent: big.peerID()})
			}
		}
		checkFor(t, 2*time.Second, "confirmations counted", func() error {
			ch := srv.channel("p")
			ch.mu.Lock()
			confirmed = len(ch.trust[forestID(big.peerID())].confirmed)
			ch.mu.Unlock()
			if want := ProbationCeiling(16, DefaultProbationSlots, confirmed); slotsOf(srv, "p", big.peerID()) != want {
				return fmt.Errorf("slots %d with %d confirmations, want %d", slotsOf(srv, "p", big.peerID()), confirmed, want)
			}
			return nil
		})
	}
	if confirmed < 3 {
		t.Fatalf("only %d children confirmed: the slots never grew past probation", confirmed)
	}
	// A peer that declares nothing gets nothing, probation or not.
	if got := slotsOf(srv, "p", kids[0].peerID()); got != 0 {
		t.Fatalf("a zero-upload peer has %d slots", got)
	}
}

// TestComplaintChurnDemotesThenEvicts: a peer that complains faster
// than any honest peer can (more than complaintsPerTree per tree in a
// second) is made a leaf; doing it again, it is evicted. Complaining past
// the budget alone is only refused.
func TestComplaintChurnDemotesThenEvicts(t *testing.T) {
	srv, base := startServer(t, Config{ProbationSlots: -1})
	origin := publish(t, base, "o")
	liar := join(t, base, "o", 5000)
	checkFor(t, 2*time.Second, "placed", func() error { return agree(srv, "o", origin, []*tclient{liar}) })
	fast := complaintsPerTree*4 + 1 // the channel has 4 trees
	for i := 0; i < fast; i++ {
		liar.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(0), Parent: 0, Reason: "silent"})
	}
	checkFor(t, 2*time.Second, "demoted", func() error {
		if got := metric(t, base, `coopcast_demotions_total{reason="complaints"}`); got != 1 {
			return fmt.Errorf("demotions %v", got)
		}
		if s := slotsOf(srv, "o", liar.peerID()); s != 0 {
			return fmt.Errorf("slots %d", s)
		}
		return nil
	})
	if liar.isClosed() || !liar.hasError(proto.CodeRateLimited) {
		t.Fatalf("after one fast second: closed %v, errors %v", liar.isClosed(), liar.errors())
	}
	// The next second, as fast again: evicted.
	checkFor(t, 5*time.Second, "evicted", func() error {
		for i := 0; i < fast && !liar.isClosed(); i++ {
			liar.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(0), Parent: 0, Reason: "silent"})
		}
		if !liar.isClosed() || metric(t, base, `coopcast_evictions_total{reason="complaints"}`) != 1 {
			return fmt.Errorf("closed %v", liar.isClosed())
		}
		return nil
	})
	if st := srv.channel("o").stats(); st.Evictions != 1 || st.Peers != 0 {
		t.Fatalf("stats %+v", st)
	}
	// A peer that only complains past its budget, slowly, is refused and
	// stays.
	slow := join(t, base, "o", 5000)
	for i := 0; i < 3*complaintBurst; i++ {
		slow.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(i % 4), Parent: 0, Reason: "silent"})
		if i%(complaintsPerTree*4) == complaintsPerTree*4-1 {
			time.Sleep(1100 * time.Millisecond) // the rate is per second: stay under it
		}
	}
	checkFor(t, 2*time.Second, "refused", func() error {
		if !slow.hasError(proto.CodeRateLimited) {
			return fmt.Errorf("errors %v", slow.errors())
		}
		return nil
	})
	if slow.isClosed() || metric(t, base, `coopcast_demotions_total{reason="complaints"}`) != 1 {
		t.Fatalf("a slow complainer was demoted or evicted")
	}
}

// TestFloodReports: one neighbour's flood report does nothing; a second
// neighbour's demotes the sender; two more evict it.
func TestFloodReports(t *testing.T) {
	srv, base := startServer(t, Config{ProbationSlots: -1})
	origin := publish(t, base, "f")
	flooder := join(t, base, "f", 5000)
	var kids []*tclient
	for i := 0; i < 8; i++ {
		kids = append(kids, join(t, base, "f", 0))
	}
	checkFor(t, 2*time.Second, "views agree", func() error { return agree(srv, "f", origin, append(kids, flooder)) })
	var linked []*tclient
	for _, ks := range childrenOf(srv, "f", flooder.peerID(), kids) {
		linked = append(linked, ks...)
	}
	if len(linked) < 2 {
		t.Fatalf("the flooder feeds %d peers, want ≥ 2", len(linked))
	}
	report := func(c *tclient) {
		c.send(proto.Message{Type: proto.TypeComplaint, Tree: intp(0), Reason: proto.ReasonFlood, Sender: flooder.peerID()})
	}
	report(linked[0])
	report(linked[0])
	time.Sleep(100 * time.Millisecond) // nothing must happen; give it the chance
	if got := metric(t, base, `coopcast_demotions_total{reason="flood"}`); got > 0 {
		t.Fatalf("one neighbour's reports demoted the sender")
	}
	report(linked[1])
	checkFor(t, 2*time.Second, "demoted", func() error {
		if got := metric(t, base, `coopcast_demotions_total{reason="flood"}`); got != 1 {
			return fmt.Errorf("demotions %v", got)
		}
		return nil
	})
	// Its former children may still report it (they were linked a moment
	// ago): two more reports evict it.
	report(linked[0])
	report(linked[1])
	checkFor(t, 2*time.Second, "evicted", func() error {
		if !flooder.isClosed() {
			return fmt.Errorf("still connected")
		}
		return nil
	})
	// A peer that was never linked to the complainer cannot be accused.
	other := join(t, base, "f", 0)
	checkFor(t, 2*time.Second, "placed", func() error { return agree(srv, "f", origin, append(kids, other)) })
	kids[0].send(proto.Message{Type: proto.TypeComplaint, Tree: intp(0), Reason: proto.ReasonFlood, Sender: other.peerID()})
	checkFor(t, 2*time.Second, "refused", func() error {
		if !kids[0].hasError(proto.CodeState) {
			return fmt.Errorf("errors %v", kids[0].errors())
		}
		return nil
	})
}
