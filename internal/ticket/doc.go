// Package ticket mints and checks fallback tickets: short-lived proofs,
// handed to a peer by the tracker, that the origin's HTTP fallback may
// serve it. A ticket is an HMAC-SHA256, under a key the origin and the
// tracker share (the origin sends it in its publish), over the channel,
// the peer id and an expiry:
//
//	tok := ticket.Mint(key, "demo", 81723, time.Now().Add(ticket.DefaultTTL))
//	peer, err := ticket.Verify(key, "demo", tok, time.Now()) // at the origin
//
// Its text form, sent in the X-Coopcast-Ticket header, is
// "<peer id>.<expiry, unix seconds>.<MAC, base64url without padding>"; the
// MAC is over "coopcast/ticket/v1\x00" ‖ channel ‖ 0x00 ‖ peer id (8 bytes,
// big-endian) ‖ expiry (8 bytes, big-endian). See docs/adr/0009.
package ticket
