package proto

// The JSON shapes of the tracker's HTTP API under /api/v1, which the
// dashboard, the tests and the load tester read.

// ChannelStats is the JSON of /api/v1/channels/{id}/stats.
type ChannelStats struct {
	Channel    string `json:"channel"`
	Origin     bool   `json:"origin_connected"`
	Trees      int    `json:"trees"`
	K          int    `json:"k"`
	Bitrate    int64  `json:"bitrate"`
	Media      *Media `json:"media,omitempty"`
	StripeRate int64  `json:"stripe_bps"`
	Peers      int    `json:"peers"`
	Joins      uint64 `json:"joins"`
	Leaves     uint64 `json:"leaves"`
	Repairs    uint64 `json:"repairs"`
	// Handoffs counts make-before-break moves: started, done (the new
	// edge delivered before the old one was cut) and expired.
	Handoffs        uint64 `json:"handoffs"`
	HandoffsDone    uint64 `json:"handoffs_done"`
	HandoffsExpired uint64 `json:"handoffs_expired"`
	// Demotions counts parents whose slots were cut (silent or corrupt).
	Demotions      uint64  `json:"demotions"`
	MaxDepth       []int   `json:"max_depth"`
	FallbackPeers  int     `json:"fallback_peers"`
	Fallbacks      []int   `json:"fallbacks"`
	Borrowed       int     `json:"borrowed_edges"`
	OriginChildren []int   `json:"origin_children"`
	RelayBytes     uint64  `json:"relay_bytes"`
	BytesFromPeers uint64  `json:"bytes_from_peers"`
	BytesFromOrig  uint64  `json:"bytes_from_origin"`
	Continuity     float64 `json:"continuity"`
	UptimeSeconds  float64 `json:"uptime_s"`
}

// ForestNode is one peer in /api/v1/channels/{id}/forest.
type ForestNode struct {
	ID       uint64       `json:"id"`
	Kind     string       `json:"kind"`
	Slots    int          `json:"slots"`
	Home     int          `json:"home"`
	Children int          `json:"children"`
	Trees    []ForestEdge `json:"trees"`
	Report   *PeerReport  `json:"report,omitempty"`
}

// ForestEdge is a peer's place in one tree.
type ForestEdge struct {
	Parent   uint64 `json:"parent"`
	Depth    int    `json:"depth"`
	Fallback bool   `json:"fallback,omitempty"`
	Pending  bool   `json:"pending,omitempty"`
}

// ForestSnapshot is the JSON of /api/v1/channels/{id}/forest.
type ForestSnapshot struct {
	Channel string       `json:"channel"`
	Trees   int          `json:"trees"`
	K       int          `json:"k"`
	Nodes   []ForestNode `json:"nodes"`
}
