package proto

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/pion/webrtc/v4"

	"github.com/coopcast/coopcast/internal/channelid"
	"github.com/coopcast/coopcast/internal/ticket"
)

// Message types. Every WebSocket message is one JSON object whose "type"
// field is one of these; docs/PROTOCOL.md describes each with an example.
const (
	// client → tracker
	TypePublish   = "publish"
	TypeJoin      = "join"
	TypeSignal    = "signal"
	TypeHeartbeat = "heartbeat"
	TypeComplaint = "complaint"
	TypeReport    = "report"
	TypeLeave     = "leave"
	// TypeEdgeOpen: a moved child's new parent in a tree delivers; the
	// tracker then releases the old parent it kept feeding meanwhile.
	TypeEdgeOpen = "edge-open"
	// tracker → client
	TypeWelcome      = "welcome"
	TypePublished    = "published"
	TypeAssignParent = "assign-parent"
	TypeRemoveParent = "remove-parent"
	TypeAssignChild  = "assign-child"
	TypeRemoveChild  = "remove-child"
	TypeFallback     = "fallback"
	TypeError        = "error"
	// TypeTicket: a fresh fallback ticket, sent before the last one
	// expires.
	TypeTicket = "ticket"
)

// Complaint reasons.
const (
	ReasonSilent  = "silent"
	ReasonStarved = "starved"
	ReasonCorrupt = "corrupt"
	ReasonFlood   = "flood"
)

// Message is the union of every message's fields; Type says which apply.
// One flat struct keeps decoding to a single pass and the fuzzer simple.
type Message struct {
	Type string `json:"type"`

	// publish, join, welcome
	Channel string `json:"channel,omitempty"`
	// publish, welcome: stream shape
	Trees       int    `json:"trees,omitempty"`
	K           int    `json:"k,omitempty"`
	Bitrate     int64  `json:"bitrate,omitempty"`    // bits/s of the whole stream
	StripeRate  int64  `json:"stripe_bps,omitempty"` // bits/s of one stripe
	PublicKey   string `json:"public_key,omitempty"` // base64 Ed25519
	FallbackURL string `json:"fallback_url,omitempty"`
	// publish, welcome, published: the stream epoch of the origin's run
	// (unix µs when it began); manifests of earlier epochs are replays
	Epoch uint64 `json:"epoch,omitempty"`
	// publish: what the stream is, for stats (codecs as RFC 6381)
	Media *Media `json:"media,omitempty"`
	// publish: the key (base64, 32 bytes) the tracker signs fallback
	// tickets with, so the origin's HTTP fallback serves only its peers
	TicketKey string `json:"ticket_key,omitempty"`
	// welcome, ticket: the peer's fallback ticket, sent to the origin in
	// the X-Coopcast-Ticket header of every fallback request
	Ticket string `json:"ticket,omitempty"`

	// join
	Kind       string  `json:"kind,omitempty"` // browser | native
	UploadKbps int64   `json:"upload_kbps,omitempty"`
	Resume     *Resume `json:"resume,omitempty"`

	// welcome
	PeerID      uint64             `json:"peer_id,omitempty"`
	ResumeToken string             `json:"resume_token,omitempty"`
	ICEServers  []webrtc.ICEServer `json:"ice_servers,omitempty"`
	HeartbeatMS int64              `json:"heartbeat_ms,omitempty"`
	Home        *int               `json:"home,omitempty"`

	// assign-*, remove-*, fallback, complaint
	Tree   *int   `json:"tree,omitempty"`
	Parent uint64 `json:"parent,omitempty"`
	Child  uint64 `json:"child,omitempty"`
	// assign-parent / assign-child: the other side's kind
	PeerKind string `json:"peer_kind,omitempty"`
	URL      string `json:"url,omitempty"`
	// complaint: "silent" (default), "starved" (nothing from any parent
	// while the origin is ahead: probe the parent, move no one),
	// "corrupt" (with evidence) or "flood" (Sender sent data it does not
	// feed the complainer)
	Reason string `json:"reason,omitempty"`
	// complaint "corrupt": the evidence the tracker checks, base64. With
	// Fragment: Manifest is the signed manifest the complainer holds and
	// Fragment the fragment (of the complaint's tree) whose hash does not
	// match it. Without: Manifest is a manifest whose signature fails.
	// A corrupt complaint without evidence that checks counts for nothing.
	Manifest string `json:"manifest,omitempty"`
	Fragment string `json:"fragment,omitempty"`
	// complaint "flood": the neighbour that sent data unasked
	Sender uint64 `json:"sender,omitempty"`
	// assign-parent: make-before-break. The child keeps taking this tree
	// from Keep, its former parent (which keeps feeding it), until the
	// new parent delivers; then it sends edge-open. Absent: the former
	// parent, if any, is gone.
	Keep *uint64 `json:"keep,omitempty"`

	// signal
	To        uint64                     `json:"to,omitempty"`
	From      *uint64                    `json:"from,omitempty"`
	SDP       *webrtc.SessionDescription `json:"sdp,omitempty"`
	Candidate *webrtc.ICECandidateInit   `json:"candidate,omitempty"`
	// Link names one link attempt between two peers, chosen by the
	// offering side and echoed in the answer, so an answer to an attempt
	// that was given up never lands on a newer one.
	Link uint64 `json:"link,omitempty"`

	// report, and optionally heartbeat
	Stats *PeerReport `json:"stats,omitempty"`

	// error
	Code  Code   `json:"code,omitempty"`
	Error string `json:"message,omitempty"`
}

// Resume is what a reconnecting peer reports: who it was and whom it
// receives from, so a restarted tracker can rebuild its forest without
// tearing down working links.
type Resume struct {
	PeerID  uint64   `json:"peer_id"`
	Token   string   `json:"token"`
	Home    int      `json:"home"`
	Parents []uint64 `json:"parents"` // per tree; 0 = origin or fallback
}

// PeerReport is the contribution and health a peer reports; the tracker
// shows it to everyone (dashboard, /forest).
type PeerReport struct {
	RelayBytes      uint64  `json:"relay_bytes"`
	BytesFromPeers  uint64  `json:"bytes_from_peers"`
	BytesFromOrigin uint64  `json:"bytes_from_origin"`
	Children        int     `json:"children"`
	ChunksPlayed    uint64  `json:"chunks_played"`
	Continuity      float64 `json:"continuity"`
	LatencyMS       float64 `json:"latency_ms"`
	BadShards       uint64  `json:"bad_shards"`
	// StreamStopped: no manifest has come for a while past when the next
	// was due: the stream has stopped at the origin, as this peer sees it.
	StreamStopped bool `json:"stream_stopped,omitempty"`
}

// Decode parses one client message and checks the fields its type needs.
// Errors are meant for the client: they say what was wrong; those about a
// malformed message wrap ErrBadMessage, and one about a type it does not
// know does not (the tracker answers it with CodeUnknownType).
func Decode(b []byte) (Message, error) {
	var m Message
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&m); err != nil {
		return Message{}, fmt.Errorf("%w: not a JSON message object: %v", ErrBadMessage, err)
	}
	if dec.More() {
		return Message{}, fmt.Errorf("%w: trailing data after the JSON object", ErrBadMessage)
	}
	if err := checkKeys(b, messageType); err != nil {
		return Message{}, fmt.Errorf("%w: %v", ErrBadMessage, err)
	}
	switch m.Type {
	case TypePublish:
		if m.Channel == "" || m.PublicKey == "" {
			return m, fmt.Errorf("%w: publish needs channel and public_key", ErrBadMessage)
		}
		if !validChannel(m.Channel) {
			return m, fmt.Errorf("%w: channel id must be 1–%d letters, digits, '.', '_', '-' or '~', starting with a letter or digit; got %q", ErrBadMessage, maxChannelLen, clip(m.Channel))
		}
		if m.TicketKey != "" {
			if k, err := base64.StdEncoding.DecodeString(m.TicketKey); err != nil || len(k) != ticket.KeySize {
				return m, fmt.Errorf("%w: ticket_key must be %d bytes, base64", ErrBadMessage, ticket.KeySize)
			}
		}
	case TypeJoin:
		if m.Channel == "" {
			return m, fmt.Errorf("%w: join needs a channel", ErrBadMessage)
		}
		if !validChannel(m.Channel) {
			return m, fmt.Errorf("%w: channel id must be 1–%d letters, digits, '.', '_', '-' or '~', starting with a letter or digit; got %q", ErrBadMessage, maxChannelLen, clip(m.Channel))
		}
		if m.Kind != "browser" && m.Kind != "native" {
			return m, fmt.Errorf("%w: join kind must be \"browser\" or \"native\", got %q", ErrBadMessage, m.Kind)
		}
		if m.UploadKbps < 0 || m.UploadKbps > maxUploadKbps {
			return m, fmt.Errorf("%w: upload_kbps must be between 0 and %d (10 Gbps), got %d", ErrBadMessage, maxUploadKbps, m.UploadKbps)
		}
	case TypeSignal:
		// "to": 0 (or absent) is the origin.
		if (m.SDP == nil) == (m.Candidate == nil) {
			return m, fmt.Errorf("%w: signal needs exactly one of sdp and candidate", ErrBadMessage)
		}
		// Only offers and answers are relayed: an SDP without a type
		// could not be encoded again for the other peer.
		if m.SDP != nil && m.SDP.Type != webrtc.SDPTypeOffer && m.SDP.Type != webrtc.SDPTypeAnswer {
			return m, fmt.Errorf("%w: sdp.type must be \"offer\" or \"answer\"", ErrBadMessage)
		}
		if m.SDP != nil && m.SDP.SDP == "" {
			return m, fmt.Errorf("%w: sdp.sdp must not be empty", ErrBadMessage)
		}
	case TypeComplaint:
		if m.Tree == nil {
			return m, fmt.Errorf("%w: complaint needs a tree", ErrBadMessage)
		}
		switch m.Reason {
		case "", ReasonSilent, ReasonStarved, ReasonCorrupt:
		case ReasonFlood:
			if m.Sender == 0 {
				return m, fmt.Errorf("%w: a flood complaint needs a sender", ErrBadMessage)
			}
		default:
			return m, fmt.Errorf("%w: complaint reason must be \"silent\", \"starved\", \"corrupt\" or \"flood\", got %q", ErrBadMessage, clip(m.Reason))
		}
		if m.Fragment != "" && m.Manifest == "" {
			return m, fmt.Errorf("%w: a complaint's fragment needs the manifest it fails against", ErrBadMessage)
		}
	case TypeEdgeOpen:
		if m.Tree == nil {
			return m, fmt.Errorf("%w: edge-open needs a tree", ErrBadMessage)
		}
	case TypeReport:
		if m.Stats == nil {
			return m, fmt.Errorf("%w: report needs stats", ErrBadMessage)
		}
	case TypeHeartbeat, TypeLeave:
	case "":
		return m, fmt.Errorf("%w: message has no type", ErrBadMessage)
	default:
		return m, fmt.Errorf("unknown message type %q: see docs/PROTOCOL.md for the types", clip(m.Type))
	}
	return m, nil
}

var messageType = reflect.TypeFor[Message]()

// validChannel is the one rule for channel ids (internal/channelid),
// which the command line checks too.
func validChannel(id string) bool { return channelid.Valid(id) }

// clip shortens what a client sent before it is echoed in an error.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// maxUploadKbps is 10 Gbps: anything above is a lie or a bug.
const maxUploadKbps = 10_000_000

// maxChannelLen bounds a channel id.
const maxChannelLen = 128

// Media describes a channel's stream. A synthetic stream has none.
type Media struct {
	Codecs string `json:"codecs"`
	Width  int    `json:"width,omitempty"`
	Height int    `json:"height,omitempty"`
}
