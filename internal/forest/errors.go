package forest

import "errors"

// Errors returned by the event methods; callers branch on them with
// errors.Is.
var (
	// ErrExists: a peer with that id is already in the forest.
	ErrExists = errors.New("forest: peer already joined")
	// ErrUnknown: no peer with that id.
	ErrUnknown = errors.New("forest: unknown peer")
	// ErrOrigin: the origin's id was used for a peer.
	ErrOrigin = errors.New("forest: peer id 0 is the origin's")
	// ErrTree: a tree index or a per-tree list is out of range.
	ErrTree = errors.New("forest: bad tree")
)
