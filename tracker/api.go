package tracker

import (
	"net/http"
	"sort"

	"github.com/gin-gonic/gin"

	"github.com/coopcast/coopcast/internal/proto"
)

func (s *Server) listChannels(c *gin.Context) {
	s.mu.Lock()
	chans := make([]*channel, 0, len(s.channels))
	for _, ch := range s.channels {
		chans = append(chans, ch)
	}
	s.mu.Unlock()
	out := make([]proto.ChannelStats, 0, len(chans))
	for _, ch := range chans {
		out = append(out, ch.stats())
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Channel < out[b].Channel })
	c.JSON(http.StatusOK, gin.H{"channels": out})
}

func (s *Server) lookup(c *gin.Context) *channel {
	ch := s.channel(c.Param("id"))
	if ch == nil {
		c.JSON(http.StatusNotFound, gin.H{"error": "no such channel: " + c.Param("id")})
	}
	return ch
}

func (s *Server) channelStats(c *gin.Context) {
	if ch := s.lookup(c); ch != nil {
		c.JSON(http.StatusOK, ch.stats())
	}
}
