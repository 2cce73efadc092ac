package origin

import (
	"bytes"
	"encoding/binary"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestIngestHostileBoxes: pushes whose first boxes are built to hurt
// (lying sizes, a moov nested 200,000 deep, a 60 MB box that never
// comes) are answered 400 with the fault, without a panic; a push
// without the token is answered 401 having read almost none of its
// 256 MB body. The heap in use (after GC, in process) stays within 8 MB
// across all of them.
func TestIngestHostileBoxes(t *testing.T) {
	in := NewIngest("live", "tok")
	hs := httptest.NewServer(in)
	t.Cleanup(hs.Close)
	ftyp := []byte{0, 0, 0, 16, 'f', 't', 'y', 'p', 'i', 's', 'o', 'm', 0, 0, 0, 0}
	nest := func(depth int) []byte {
		b := bytes.Clone(ftyp)
		for i := 0; i < depth; i++ {
			typ := "trak"
			if i == 0 {
				typ = "moov"
			}
			b = binary.BigEndian.AppendUint32(b, uint32(8*depth+8-8*i))
			b = append(b, typ...)
		}
		return append(b, 0, 0, 0, 8, 'f', 'r', 'e', 'e')
	}
	post := func(token string, body io.Reader, size int64) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/ingest/live", body)
		req.ContentLength = size
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := hs.Client().Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	h0 := heapInuse()
	for _, c := range []struct {
		name string
		b    []byte
		says string
	}{
		{"not MP4", []byte("#EXTM3U\n#EXT-X-VERSION:3\n"), "not an MP4"},
		{"size 0", append(bytes.Clone(ftyp), 0, 0, 0, 0, 'm', 'o', 'o', 'v'), "runs to the end"},
		{"64-bit size of 2^63", append(bytes.Clone(ftyp), 0, 0, 0, 1, 'm', 'o', 'o', 'v', 0x80, 0, 0, 0, 0, 0, 0, 0), "more than"},
		{"size under its header", append(bytes.Clone(ftyp), 0, 0, 0, 3, 'm', 'o', 'o', 'v'), "claims 3 bytes"},
		{"moov of 60 MB that never comes", append(append(bytes.Clone(ftyp), 0x03, 0xc0, 0, 0, 'm', 'o', 'o', 'v'), make([]byte, 1000)...), "ends inside a box"},
		{"moov nested 200,000 deep", nest(200_000), "nest more than 32 deep"},
	} {
		code, msg := post("tok", bytes.NewReader(c.b), int64(len(c.b)))
		if code != http.StatusBadRequest || !strings.Contains(msg, c.says) {
			t.Errorf("%s: %d %q, want 400 saying %q", c.name, code, msg, c.says)
		}
	}
	body := &zeros{left: 256 << 20}
	if code, msg := post("", body, 256<<20); code != http.StatusUnauthorized && code != 0 {
		t.Errorf("no token, 256 MB: %d %q, want 401", code, msg)
	}
	if n := body.read.Load(); n > 16<<20 {
		t.Errorf("no token: %d MB of the body read", n>>20)
	}
	if d := int64(heapInuse()) - int64(h0); d > 8<<20 {
		t.Errorf("heap in use grew %.1f MB", float64(d)/(1<<20))
	}
}

// zeros is a body of left zero bytes that counts what was taken.
type zeros struct {
	left int64
	read atomic.Int64
}

func (z *zeros) Read(p []byte) (int, error) {
	if z.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), z.left))
	clear(p[:n])
	z.left -= int64(n)
	z.read.Add(int64(n))
	return n, nil
}
