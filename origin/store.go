package origin

import (
	"sync"
)

// stored is one chunk as the origin keeps it for HTTP fallback.
type stored struct {
	seq      uint32
	manifest []byte   // signed manifest message
	shards   [][]byte // M shards
	chunk    []byte   // the whole chunk, for the plain-HTTP baseline
}

// store keeps the last few chunks, so peers can fetch what the trees did
// not bring them before the deadline.
type store struct {
	mu     sync.RWMutex // guards ring, latest, have
	ring   []stored
	latest uint32
	have   bool
}

func newStore(n int) *store { return &store{ring: make([]stored, n)} }

func (s *store) put(c stored) {
	s.mu.Lock()
	s.ring[int(c.seq)%len(s.ring)] = c
	s.latest, s.have = c.seq, true
	s.mu.Unlock()
}

// get returns chunk seq if it is still kept.
func (s *store) get(seq uint32) (stored, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.ring[int(seq)%len(s.ring)]
	if !s.have || c.manifest == nil || c.seq != seq {
		return stored{}, false
	}
	return c, true
}

// last returns the newest chunk's number.
func (s *store) last() (uint32, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.latest, s.have
}
