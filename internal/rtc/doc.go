// Package rtc makes the WebRTC links between coopcast nodes: one pion
// PeerConnection per pair of neighbours, carrying one unordered,
// partially reliable data channel that every tree's edges between the pair
// share.
//
// An Endpoint holds the pion API configured once (which interfaces ICE may
// use, STUN/TURN servers, the data channel's packet lifetime). Dial makes a
// Link as the offering side, Accept as the answering side; both exchange a
// complete SDP (candidates gathered before it is sent) through a signal
// callback that the caller relays through the tracker. A Link sends without
// blocking and reports its buffered amount, so that a relay can bound its
// per-child queue and drop the oldest chunk instead of stalling.
//
//	ep, _ := rtc.NewEndpoint(rtc.Config{ICEInterfaces: []string{"lo"}})
//	link, _ := ep.Dial(func(s rtc.Signal) error { return tracker.Send(peer, s) })
//	link.OnMessage(func(b []byte) { ... })
//	// on the tracker's answer: link.HandleSignal(answer)
package rtc
