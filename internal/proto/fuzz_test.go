package proto

import (
	"encoding/json"
	"reflect"
	"testing"
)

// FuzzDecodeMessage: no input panics the decoder, and whatever it accepts
// re-encodes and decodes to the same message.
func FuzzDecodeMessage(f *testing.F) {
	for _, s := range []string{
		`{"type":"join","channel":"demo","kind":"browser","upload_kbps":1000}`,
		`{"type":"join","channel":"demo","kind":"native","resume":{"peer_id":5,"token":"x","home":1,"parents":[0,3,4,0]}}`,
		`{"type":"publish","channel":"demo","trees":4,"k":3,"bitrate":500000,"public_key":"AAAA"}`,
		`{"type":"signal","to":7,"sdp":{"type":"offer","sdp":"v=0"}}`,
		`{"type":"signal","to":7,"candidate":{"candidate":"candidate:1 1 udp 1 127.0.0.1 5000 typ host"}}`,
		`{"type":"complaint","tree":2,"parent":9,"reason":"corrupt"}`,
		`{"type":"report","stats":{"relay_bytes":100,"continuity":0.99}}`,
		`{"type":"heartbeat"}`, `{"type":"leave"}`, `{}`, `[]`, `null`, `{"type":"join","upload_kbps":-1}`,
		`{"type":"join","channel":"c","kind":"native"} {}`,
		`{"type":"signal","sdp":{}}`, `{"type":"signal","sdp":{"type":"rollback","sdp":""}}`,
		`{"Type":"leave"}`, `{"type":"signal","to":7,"sdp":{"Type":"offer","sdp":"v=0"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Decode(b)
		if err != nil {
			return
		}
		out, err := json.Marshal(m)
		if err != nil {
			t.Fatalf("accepted message does not re-encode: %v", err)
		}
		m2, err := Decode(out)
		if err != nil || !reflect.DeepEqual(m, m2) {
			t.Fatalf("re-decoded %s\nas %+v\nfrom %+v: %v", out, m2, m, err)
		}
	})
}
