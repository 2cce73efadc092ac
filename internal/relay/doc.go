// Package relay holds the fan-out side of a coopcast node: one bounded
// Queue per child, in front of that child's link.
//
// A relaying node pushes each message to every child's Queue the moment it
// arrives (cut-through). The Queue hands it straight to the link while the
// link's own send buffer is below a high-water mark; beyond that it keeps
// messages, up to a byte limit; when a push would pass the limit it drops
// the oldest whole chunk's messages for that child. A slow child thus
// loses old data, never its connection, and never slows its siblings:
// Push does not block.
//
//	q := relay.NewQueue(link, relay.Config{})
//	link.OnBufferedLow(relay.DefaultLowWater, q.Pump)
//	q.Push(seq, msg) // for each child in the message's tree
package relay
