package forest

import (
	"fmt"
	"math"
)

// PeerID names a peer within one channel. The zero value is the origin,
// the root of every tree.
type PeerID uint64

// Origin is the root of every tree.
const Origin PeerID = 0

// Kind tells what sort of program a peer is.
type Kind uint8

// Kinds of peer.
const (
	Browser Kind = iota
	Native
)

// String returns "browser" or "native".
func (k Kind) String() string {
	switch k {
	case Browser:
		return "browser"
	case Native:
		return "native"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}

// Op says what a Decision asks for.
type Op uint8

// Operations a Decision asks for.
const (
	// Attach: Peer's parent in Tree is now Parent; Parent must feed Peer.
	Attach Op = iota + 1
	// Detach: Parent no longer feeds Peer in Tree. Sent before the Attach
	// that moves Peer elsewhere, and when Peer leaves.
	Detach
	// Fallback: Peer has no parent in Tree and fetches that stripe from the
	// origin over HTTP until a later Attach.
	Fallback
)

// String returns the operation's name.
func (o Op) String() string {
	switch o {
	case Attach:
		return "attach"
	case Detach:
		return "detach"
	case Fallback:
		return "fallback"
	}
	return fmt.Sprintf("op(%d)", uint8(o))
}

// Decision is one change to the forest that the caller must carry out.
type Decision struct {
	Op     Op
	Tree   int
	Peer   PeerID
	Parent PeerID // Origin for Fallback
}

func (d Decision) String() string {
	return fmt.Sprintf("%s tree=%d peer=%d parent=%d", d.Op, d.Tree, d.Peer, d.Parent)
}

// Peer describes a peer as it joins.
type Peer struct {
	Kind Kind
	// Slots is how many stripe streams the peer can upload: its children in
	// its home tree (plus any borrowed edges). See Slots.
	Slots int
}

// Slots converts an upload capacity into a slot count:
// floor(uploadBps / stripeBps), clamped to [0, max]. A non-positive stripe
// rate gives 0.
func Slots(uploadBps, stripeBps int64, max int) int {
	if uploadBps <= 0 || stripeBps <= 0 || max <= 0 {
		return 0
	}
	n := uploadBps / stripeBps
	if n > int64(max) || n > math.MaxInt32 {
		return max
	}
	return int(n)
}
