package httpserver

import (
	"net/http"
	"testing"
)

// TestNew: the server has the limits the package promises, and none that
// would cut a WebSocket or a live push (the behaviour under slow and
// bloated clients is tested against the tracker binary, in
// tracker.TestSlowHTTPClientsBounded).
func TestNew(t *testing.T) {
	h := http.NotFoundHandler()
	s := New(h)
	if s.ReadHeaderTimeout != ReadHeaderTimeout || s.IdleTimeout != IdleTimeout || s.MaxHeaderBytes != MaxHeaderBytes {
		t.Errorf("limits %v %v %v", s.ReadHeaderTimeout, s.IdleTimeout, s.MaxHeaderBytes)
	}
	if s.ReadTimeout != 0 || s.WriteTimeout != 0 {
		t.Errorf("ReadTimeout %v WriteTimeout %v: would cut WebSockets and pushes", s.ReadTimeout, s.WriteTimeout)
	}
	if s.Handler == nil {
		t.Error("no handler")
	}
}
