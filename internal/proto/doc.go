// Package proto is the tracker's wire protocol, shared by both of its
// sides: the tracker (package tracker) and its clients (internal/swarm,
// and through it origin and peer). It holds the WebSocket messages
// (Message, one flat JSON object whose Type says which fields apply), the
// error codes (Code), what peers report (PeerReport), and the JSON shapes
// of the tracker's HTTP API (ChannelStats, ForestSnapshot).
//
// A client builds a Message and encodes it with encoding/json; the
// tracker reads one with Decode, which refuses anything a strict JSON
// reader would see differently and checks the fields the message's type
// needs:
//
//	m, err := proto.Decode(b)
//	if errors.Is(err, proto.ErrBadMessage) { /* answer proto.CodeBadMessage */ }
//
// The package is a leaf: it imports no coopcast package but other leaves
// (internal/ticket), so that a client of the tracker never links the
// tracker's server. docs/PROTOCOL.md describes every message with an
// example.
package proto
