package webclient

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestPagesHaveAnIcon: both pages name their icon inline, so a browser
// never asks for /favicon.ico (a 404 in every page's console before).
func TestPagesHaveAnIcon(t *testing.T) {
	for _, path := range []string{"/", "/dashboard"} {
		rec := httptest.NewRecorder()
		Handler().ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
		b, _ := io.ReadAll(rec.Result().Body)
		if rec.Code != 200 || !strings.Contains(string(b), `<link rel="icon" href="data:image/svg+xml,`) {
			t.Errorf("GET %s: %d, no inline icon", path, rec.Code)
		}
	}
}
