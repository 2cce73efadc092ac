package ticket

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KeySize is the length of a ticket key.
const KeySize = 32

// DefaultTTL is how long a ticket is valid; the tracker sends a fresh one
// every DefaultTTL/2, so a ticket in use always has a minute left.
const DefaultTTL = 2 * time.Minute

// context separates ticket MACs from any other use of the key.
const context = "coopcast/ticket/v1\x00"

// maxLen bounds what Verify reads: 16 + 1 + 20 + 1 + 43 bytes fit easily.
const maxLen = 128

// Errors Verify returns; the origin's 401 says which.
var (
	ErrMissing   = errors.New("no fallback ticket")
	ErrMalformed = errors.New("malformed fallback ticket")
	ErrExpired   = errors.New("fallback ticket expired")
	ErrForged    = errors.New("fallback ticket not valid for this channel")
)

// DeriveKey returns the ticket key of a channel key: the same for every
// run of an origin that keeps its channel key (--key), so tickets the
// tracker minted before an origin restart stay good after it. It is a
// hash of the key's seed under its own label, so knowing it reveals
// nothing of the signing key.
func DeriveKey(priv ed25519.PrivateKey) []byte {
	mac := hmac.New(sha256.New, priv.Seed())
	mac.Write([]byte("coopcast/ticket-key/v1"))
	return mac.Sum(nil)
}

// Mint returns the ticket for peer in channel, valid until expires (to
// the second).
func Mint(key []byte, channel string, peer uint64, expires time.Time) string {
	exp := expires.Unix()
	return strconv.FormatUint(peer, 10) + "." + strconv.FormatInt(exp, 10) + "." +
		base64.RawURLEncoding.EncodeToString(sum(key, channel, peer, exp))
}

// Verify checks tok for channel at now and returns the peer it was
// minted for. Errors wrap ErrMissing, ErrMalformed, ErrExpired or
// ErrForged (a wrong key or channel, or a changed field).
func Verify(key []byte, channel, tok string, now time.Time) (peer uint64, err error) {
	if tok == "" {
		return 0, ErrMissing
	}
	if len(tok) > maxLen {
		return 0, fmt.Errorf("%w: longer than %d bytes", ErrMalformed, maxLen)
	}
	ps, rest, ok1 := strings.Cut(tok, ".")
	es, ms, ok2 := strings.Cut(rest, ".")
	if !ok1 || !ok2 {
		return 0, fmt.Errorf("%w: want PEER.EXPIRY.MAC", ErrMalformed)
	}
	peer, err1 := strconv.ParseUint(ps, 10, 64)
	exp, err2 := strconv.ParseInt(es, 10, 64)
	mac, err3 := base64.RawURLEncoding.DecodeString(ms)
	if err1 != nil || err2 != nil || err3 != nil || len(mac) != sha256.Size {
		return 0, fmt.Errorf("%w: want PEER.EXPIRY.MAC", ErrMalformed)
	}
	// The MAC first: an expiry is only news if the tracker wrote it.
	if !hmac.Equal(mac, sum(key, channel, peer, exp)) {
		return 0, ErrForged
	}
	if now.Unix() >= exp {
		return 0, fmt.Errorf("%w %s ago", ErrExpired, now.Sub(time.Unix(exp, 0)).Round(time.Second))
	}
	return peer, nil
}

func sum(key []byte, channel string, peer uint64, exp int64) []byte {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(context))
	mac.Write([]byte(channel))
	var b [17]byte
	binary.BigEndian.PutUint64(b[1:9], peer)
	binary.BigEndian.PutUint64(b[9:], uint64(exp))
	mac.Write(b[:])
	return mac.Sum(nil)
}
