// Package forest builds and repairs coopcast's distribution forest: for one
// channel, M trees rooted at the origin, one per stripe.
//
// The forest is pure: no I/O, no goroutines, no clock. A caller (the
// tracker, or the load-test simulator) feeds it events — Join, Leave,
// Complain, SetSlots, Restore, Settle — and gets back the decisions to carry
// out: attach peer X under Y in tree i, detach X from Y, serve X stripe i by
// HTTP fallback. The same code therefore runs in the tracker and in the
// simulator, and a property test can drive it through millions of events.
//
// Shape of a forest (CoopNet, SplitStream):
//
//   - Every peer with upload slots is interior in exactly one tree, its home
//     tree, chosen at join as the tree with the fewest spare slots; it is a
//     leaf in every other tree. A departure thus cuts at most one subtree
//     that is more than a single leaf.
//   - A peer's slots (children it may feed) are floor(upload / stripe rate),
//     see Slots. Peers with no slots are leaves everywhere.
//   - Peers take the shallowest free slot. A peer with slots that would land
//     deeper than an existing leaf takes that leaf's place and adopts it,
//     so peers with upload sit above those without and trees stay short.
//   - When a tree has no free slot, a leaf is served from the origin's
//     shared reserve, then by a peer with spare upload that lends a slot in a
//     tree that is not its home (such a borrowed edge only ever feeds a
//     leaf), and only then does it go to HTTP fallback for that stripe.
//   - Repair re-attaches each orphaned subtree whole at the shallowest free
//     slot outside itself, without touching the other trees.
//
// A Forest is not safe for concurrent use; its owner serialises events.
package forest
