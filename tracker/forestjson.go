package tracker

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/klauspost/compress/gzip"
)

// snapCache holds a channel's /forest response, built once per change
// and served to every request until the next: a dashboard polled by many
// viewers costs one encoding, not one per request, and the channel's lock
// is held only to copy the forest.
type snapCache struct {
	mu        sync.Mutex // guards the fields below; serializes builds. Taken before channel.mu.
	built     time.Time
	forestVer uint64
	reportVer uint64
	etag      string // weak: shared by the plain and gzip bodies
	body, gz  []byte
}

// reportRefresh is how stale peers' reports in /forest may get: reports
// arrive every heartbeat from every peer, so a change to them alone
// rebuilds the response at most this often. A change to the forest
// rebuilds it at once.
const reportRefresh = time.Second

// forestJSON returns the channel's /forest response, rebuilding it if the
// forest changed, or if reports did and the response is older than
// reportRefresh.
func (ch *channel) forestJSON(now time.Time) (etag string, body, gz []byte, err error) {
	c := &ch.snap
	c.mu.Lock()
	defer c.mu.Unlock()
	ch.mu.Lock()
	fv, rv := ch.forestVer, ch.reportVer
	ch.mu.Unlock()
	if c.body != nil && fv == c.forestVer && (rv == c.reportVer || now.Sub(c.built) < reportRefresh) {
		return c.etag, c.body, c.gz, nil
	}
	snap, fv, rv := ch.copyForest()
	body, err = json.Marshal(snap)
	if err != nil {
		return "", nil, nil, err
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestSpeed)
	zw.Write(body)
	if err := zw.Close(); err != nil {
		return "", nil, nil, err
	}
	sum := sha256.Sum256(body)
	c.etag = `W/"` + base64.RawURLEncoding.EncodeToString(sum[:12]) + `"`
	c.body, c.gz, c.built, c.forestVer, c.reportVer = body, buf.Bytes(), now, fv, rv
	return c.etag, c.body, c.gz, nil
}

func (s *Server) channelForest(c *gin.Context) {
	ch := s.lookup(c)
	if ch == nil {
		return
	}
	etag, body, gz, err := ch.forestJSON(time.Now())
	if err != nil {
		s.log.Error("encode /forest", "channel", ch.id, "err", err)
		c.JSON(http.StatusInternalServerError, gin.H{"error": "internal error"})
		return
	}
	h := c.Writer.Header()
	h.Set("ETag", etag)
	h.Set("Cache-Control", "no-cache") // may be kept, but ask each time
	h.Add("Vary", "Accept-Encoding")
	if etagMatch(c.GetHeader("If-None-Match"), etag) {
		c.Status(http.StatusNotModified)
		return
	}
	if acceptsGzip(c.GetHeader("Accept-Encoding")) {
		h.Set("Content-Encoding", "gzip")
		body = gz
	}
	c.Data(http.StatusOK, "application/json; charset=utf-8", body)
}

// etagMatch is If-None-Match's weak comparison (RFC 9110, 13.1.2).
func etagMatch(header, etag string) bool {
	if header == "" {
		return false
	}
	if strings.TrimSpace(header) == "*" {
		return true
	}
	want := strings.TrimPrefix(etag, "W/")
	for _, t := range strings.Split(header, ",") {
		if strings.TrimPrefix(strings.TrimSpace(t), "W/") == want {
			return true
		}
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding header allows gzip.
func acceptsGzip(header string) bool {
	for _, t := range strings.Split(header, ",") {
		name, params, _ := strings.Cut(t, ";")
		name = strings.ToLower(strings.TrimSpace(name))
		if name != "gzip" && name != "*" {
			continue
		}
		q := strings.ReplaceAll(strings.ToLower(params), " ", "")
		if q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000" {
			return false
		}
		return true
	}
	return false
}
