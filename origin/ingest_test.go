package origin

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coopcast/coopcast/internal/rtc"
	"github.com/coopcast/coopcast/internal/ticket"
	"github.com/coopcast/coopcast/internal/wire"
	"github.com/coopcast/coopcast/tracker"
)

// TestIngest pushes the test card over HTTP as an encoder would and checks
// the answers to bad pushes: no token, not MP4, a second push at once.
func TestIngest(t *testing.T) {
	srv, err := tracker.New(tracker.Config{PublishToken: "tok"})
	if err != nil {
		t.Fatal(err)
	}
	in := NewIngest("live", "tok")
	var fb SwitchHandler
	mux := http.NewServeMux()
	mux.Handle(in.Path(), in)
	mux.Handle("/fallback/", &fb)
	mux.Handle("/", srv.Handler())
	hs := httptest.NewServer(mux)
	defer hs.Close()
	ctx, cancel := context.WithCancel(context.Background())
	_, priv, _ := ed25519.GenerateKey(nil)
	done := make(chan error, 2)
	go func() { done <- srv.Run(ctx) }()
	go func() {
		done <- RunIngest(ctx, Config{TrackerURL: hs.URL, Channel: "live", PublishToken: "tok", Bitrate: 400_000, PrivateKey: priv,
			FallbackURL: hs.URL + "/fallback/live", EndLinger: 10 * time.Millisecond, RTC: rtc.Config{ICEInterfaces: []string{"lo"}}}, in, fb.Store)
	}()
	defer func() { cancel(); <-done; <-done; srv.Close() }()

	post := func(token string, body io.Reader) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, hs.URL+"/ingest/live", body)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	if code, msg := post("", bytes.NewReader(testcardMP4)); code != http.StatusUnauthorized {
		t.Errorf("no token: %d %s", code, msg)
	}
	if code, msg := post("tok", strings.NewReader("<html>not video</html>")); code != http.StatusBadRequest || !strings.Contains(msg, "not an MP4") {
		t.Errorf("not MP4: %d %s", code, msg)
	}
	// A push held open: the init segment and one fragment, then nothing.
	pr, pw := io.Pipe()
	first := make(chan int, 1)
	go func() { code, _ := post("tok", pr); first <- code }()
	split := bytes.Index(testcardMP4, []byte("moof")) - 4
	pw.Write(testcardMP4[:split])
	deadline := time.Now().Add(5 * time.Second)
	for !in.busy.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if code, msg := post("tok", bytes.NewReader(testcardMP4)); code != http.StatusConflict {
		t.Errorf("second push: %d %s", code, msg)
	}
	// The pushed stream's init segment is served, signed by the channel key.
	var resp *http.Response
	req, _ := http.NewRequest(http.MethodGet, hs.URL+"/fallback/live/init", nil)
	req.Header.Set(wire.TicketHeader, ticket.Mint(ticket.DeriveKey(priv), "live", 1, time.Now().Add(time.Minute)))
	for time.Now().Before(deadline) {
		if resp, err = http.DefaultClient.Do(req); err == nil && resp.StatusCode == http.StatusOK {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if resp == nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("init not served: %v", err)
	}
	initSeg, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	sig, _ := base64.StdEncoding.DecodeString(resp.Header.Get(wire.InitSignatureHeader))
	epoch, _ := strconv.ParseUint(resp.Header.Get(wire.InitEpochHeader), 10, 64)
	if err := wire.VerifyInit(priv.Public().(ed25519.PublicKey), "live", epoch, initSeg, sig); err != nil || !bytes.Equal(initSeg, testcardMP4[:split]) {
		t.Fatalf("init segment: %v", err)
	}
	if now := uint64(time.Now().UnixMicro()); epoch == 0 || epoch > now {
		t.Fatalf("init segment of epoch %d, want the push's start (now is %d)", epoch, now)
	}
	pw.Write(testcardMP4[split:])
	pw.Close()
	if code := <-first; code != http.StatusOK {
		t.Errorf("push answered %d", code)
	}
	// The next push is welcome once the first ended.
	if code, msg := post("tok", bytes.NewReader(testcardMP4)); code != http.StatusOK {
		t.Errorf("second push after the first ended: %d %s", code, msg)
	}
}
