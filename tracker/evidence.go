package tracker

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"github.com/coopcast/coopcast/internal/proto"
	"time"

	"github.com/coopcast/coopcast/internal/forest"
	"github.com/coopcast/coopcast/internal/wire"
)

// Checkable evidence. A child that gets bad data from a neighbour that
// feeds it shows the tracker the bytes: the channel's signed manifest and
// the fragment whose hash does not match it, or a manifest whose
// signature fails. The tracker knows the channel's public key from the
// origin's publish and checks the bytes itself; a corrupt-data complaint
// whose evidence does not check counts for nothing (it has spent one of
// the complainer's complaints).
//
// Evidence proves that the bytes are bad, not who sent them: links are
// not signed per message, so a liar can fabricate it. What bounds a liar:
// it can accuse only a peer the tracker linked it to lately; its evidence
// alone demotes at most one parent per accuseWindow (then it needs a
// second child's evidence); eviction always needs a second child's. A
// proven bad sender is demoted to a leaf at once (its children are cut
// from it without make-before-break: what it sends is useless); caught
// again by another child's evidence, it is evicted.
//
// Floods have no evidence (unasked data is dropped unread), so they count
// as silence does: distinct neighbours must agree.

// Demotion and eviction reasons, the reason label of
// coopcast_demotions_total and coopcast_evictions_total.
const (
	reasonCorruptShard = "corrupt"    // a fragment that fails its signed manifest's hash
	reasonForged       = "forged"     // a manifest whose signature fails
	reasonFlood        = "flood"      // distinct neighbours report unasked data
	reasonComplaints   = "complaints" // complaints far past the budget
)

// errNoEvidence: a corrupt-data complaint without the bytes to check.
var errNoEvidence = errors.New("no evidence: send the manifest (and the fragment) that fail verification")

// checkEvidence checks a corrupt-data complaint's evidence about tree and
// returns what it proves (reasonCorruptShard or reasonForged), or why it
// proves nothing. ch.mu held (it reads the channel's key).
func (ch *channel) checkEvidence(m proto.Message, tree int) (string, error) {
	if m.Manifest == "" {
		return "", errNoEvidence
	}
	key, err := base64.StdEncoding.DecodeString(ch.publicKey)
	if err != nil || len(key) != ed25519.PublicKeySize {
		return "", errors.New("the channel's public key is not an Ed25519 key: nothing can be checked")
	}
	raw, err := base64.StdEncoding.DecodeString(m.Manifest)
	if err != nil {
		return "", fmt.Errorf("manifest is not base64: %v", err)
	}
	man, err := wire.ParseManifest(raw)
	if err != nil {
		return "", fmt.Errorf("manifest does not parse: %v", err)
	}
	verr := man.Verify(ed25519.PublicKey(key), ch.id)
	if m.Fragment == "" {
		if verr == nil {
			return "", errors.New("the manifest's signature is good")
		}
		return reasonForged, nil
	}
	if verr != nil {
		return "", errors.New("the manifest a fragment is checked against must carry the channel's signature")
	}
	fb, err := base64.StdEncoding.DecodeString(m.Fragment)
	if err != nil {
		return "", fmt.Errorf("fragment is not base64: %v", err)
	}
	f, err := wire.ParseFragment(fb)
	if err != nil {
		return "", fmt.Errorf("fragment does not parse: %v", err)
	}
	if int(f.Shard) != tree {
		return "", fmt.Errorf("fragment of tree %d in a complaint about tree %d", f.Shard, tree)
	}
	switch err := man.VerifyFragment(f); {
	case err == nil:
		return "", errors.New("the fragment matches the manifest")
	case !errors.Is(err, wire.ErrHash):
		return "", fmt.Errorf("fragment is not one of the manifest's: %v", err)
	}
	return reasonCorruptShard, nil
}

// fedLately reports whether the tracker linked a and b now or within
// signalGrace: data that came in flight from a parent just cut still
// counts as its. ch.mu held.
func (ch *channel) fedLately(a, b forest.PeerID, now time.Time) bool {
	return ch.f.Linked(a, b) || now.Before(ch.recent[mkpair(a, b)])
}

// corruptLocked handles a corrupt-data complaint by c about m.Parent in
// tree (c's complaint budget is spent already). ch.mu held.
func (ch *channel) corruptLocked(c *client, m proto.Message, tree int, now time.Time) {
	sender := forest.PeerID(m.Parent)
	reason, err := ch.checkEvidence(m, tree)
	if err != nil {
		ch.srv.metrics.rejected.WithLabelValues("unproven-complaint").Inc()
		c.sendError(proto.CodeBadEvidence, "corrupt-data complaint ignored: "+err.Error())
		return
	}
	if sender == forest.Origin {
		// The origin signs the stream; bad bytes "from" it came from
		// somewhere else. Nothing to demote.
		return
	}
	if !ch.fedLately(c.id, sender, now) {
		ch.srv.metrics.rejected.WithLabelValues("unproven-complaint").Inc()
		c.sendError(proto.CodeBadEvidence, fmt.Sprintf("corrupt-data complaint ignored: peer %d has not fed you lately", sender))
		return
	}
	// The complainer moves off a bad parent whatever else happens.
	defer func() {
		if p, ok := ch.f.Parent(c.id, tree); ok && p == sender && ch.peers[c.id] == c {
			if ds, err := ch.f.Complain(c.id, tree); err == nil {
				ch.applyWith(ds, true, false)
				ch.gauges()
			}
		}
	}()
	t := ch.trustLocked(sender)
	if t.provenBy == nil {
		t.provenBy = map[forest.PeerID]time.Time{}
	}
	if _, again := t.provenBy[c.id]; again {
		return // the same child's evidence of the same offence
	}
	t.provenBy[c.id] = now
	witnesses := ch.distinctLocked(t.provenBy, now)
	if t.demoted == "" {
		ct := ch.trustLocked(c.id)
		if witnesses < ch.srv.cfg.ComplaintLimit && !ct.accusedAt.IsZero() && now.Sub(ct.accusedAt) < accuseWindow {
			ch.srv.log.Info("evidence held until another child shows some: this child's evidence alone demoted a parent lately",
				"channel", ch.id, "peer", sender, "by", c.id, "reason", reason)
			return
		}
		ct.accusedAt = now
		ch.demoteLocked(sender, reason, true)
		return
	}
	// Proven bad once already, and caught again by another child.
	if sc := ch.peers[sender]; sc != nil {
		ch.evictLocked(sc, reason, "children showed that you sent data that fails the channel's signature")
	}
}

// floodLocked handles c's report that m.Sender, a neighbour, sent it data
// it does not feed c (in a flood). Distinct neighbours' reports within
// the complaint window demote the sender to a leaf; reports from
// ComplaintLimit more neighbours after that evict it. ch.mu held.
func (ch *channel) floodLocked(c *client, m proto.Message, now time.Time) {
	sender := forest.PeerID(m.Sender)
	if sender == forest.Origin || sender == c.id || !ch.fedLately(c.id, sender, now) {
		c.sendError(proto.CodeState, fmt.Sprintf("flood complaint ignored: peer %d is not linked to you", sender))
		return
	}
	t := ch.trustLocked(sender)
	if t.floodBy == nil {
		t.floodBy = map[forest.PeerID]time.Time{}
	}
	t.floodBy[c.id] = now
	if ch.distinctLocked(t.floodBy, now) < ch.srv.cfg.ComplaintLimit {
		return
	}
	t.floodBy = nil
	if t.demoted == "" {
		ch.demoteLocked(sender, reasonFlood, false)
		return
	}
	if sc := ch.peers[sender]; sc != nil {
		ch.evictLocked(sc, reasonFlood, "your neighbours report that you flood them with data they did not ask for")
	}
}
