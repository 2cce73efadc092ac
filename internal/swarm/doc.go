// Package swarm is one node's membership in a channel's swarm: its
// session with the tracker (join or publish, heartbeats, reconnects with
// resume), its parent and children in every tree as the tracker assigns
// them, and one WebRTC link to each neighbour, shared by every tree the
// pair has in common. The origin and the native peer both run a Member;
// what they do with the bytes is theirs.
//
// The data path is lock-light: Fanout reads an immutable snapshot of a
// tree's children and pushes the message to each child's bounded queue
// (internal/relay), so one slow child never slows the others.
//
//	m, _ := swarm.New(swarm.Config{TrackerURL: "http://127.0.0.1:8080", Channel: "demo", Handler: h})
//	go m.Run(ctx)
//	m.Fanout(tree, seq, msg) // to my children in tree
package swarm
