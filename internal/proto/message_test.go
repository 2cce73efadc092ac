package proto

import (
	"errors"
	"strings"
	"testing"
)

// TestDecodeMessageStrict: keys that differ from the protocol's only in
// case are refused at every depth, an SDP must be an offer or an answer
// with a body, and unknown fields are ignored (forward compatibility).
func TestDecodeMessageStrict(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string // substring of the error; "" = accepted
	}{
		{"fuzz crasher", `{"tYpe":"signal","sdp":{}}`, "case-sensitive"},
		{"empty sdp", `{"type":"signal","sdp":{}}`, `sdp.type must be "offer" or "answer"`},
		{"sdp without body", `{"type":"signal","sdp":{"type":"offer","sdp":""}}`, "sdp.sdp must not be empty"},
		{"rollback", `{"type":"signal","sdp":{"type":"rollback","sdp":"v=0"}}`, `sdp.type must be "offer" or "answer"`},
		{"pranswer", `{"type":"signal","sdp":{"type":"pranswer","sdp":"v=0"}}`, `sdp.type must be "offer" or "answer"`},
		{"case in nested sdp", `{"type":"signal","sdp":{"Type":"offer","sdp":"v=0"}}`, "case-sensitive"},
		{"case in candidate", `{"type":"signal","candidate":{"Candidate":"x"}}`, "case-sensitive"},
		{"case in resume", `{"type":"join","channel":"c","kind":"native","resume":{"PEER_ID":1}}`, "case-sensitive"},
		{"case in stats", `{"type":"report","stats":{"Continuity":1}}`, "case-sensitive"},
		{"second type in another case", `{"type":"heartbeat","TYPE":"leave"}`, "case-sensitive"},
		{"offer", `{"type":"signal","to":7,"sdp":{"type":"offer","sdp":"v=0"}}`, ""},
		{"end of candidates", `{"type":"signal","to":7,"candidate":{"candidate":""}}`, ""},
		{"unknown field ignored", `{"type":"heartbeat","new_in_v9":{"Anything":1}}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Decode([]byte(tc.in))
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("accepted, want an error with %q", tc.want)
			case tc.want != "" && (!strings.Contains(err.Error(), tc.want) || !errors.Is(err, ErrBadMessage)):
				t.Fatalf("error %q, want bad-message with %q", err, tc.want)
			}
		})
	}
}
