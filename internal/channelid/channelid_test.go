package channelid

import (
	"strings"
	"testing"
)

func TestValid(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"demo", true}, {"Live", true}, {"a.b_c-d~e", true}, {"0", true},
		{strings.Repeat("x", MaxLen), true},
		{"", false}, {"my channel", false}, {"-x", false}, {".x", false}, {"a/b", false},
		{"é", false}, {strings.Repeat("x", MaxLen+1), false},
	} {
		if got := Valid(tc.id); got != tc.want {
			t.Errorf("Valid(%q) = %v, want %v", tc.id, got, tc.want)
		}
		if err := Check(tc.id); (err == nil) != tc.want {
			t.Errorf("Check(%q) = %v", tc.id, err)
		}
	}
	if err := Check("my channel"); err == nil || !strings.Contains(err.Error(), `got "my channel"`) || !strings.Contains(err.Error(), "letters, digits") {
		t.Errorf("Check says %v", err)
	}
}
