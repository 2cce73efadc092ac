package channelid

import "fmt"

// MaxLen is the longest channel id, in bytes.
const MaxLen = 128

// Rule says the rule in words, for error messages.
var Rule = fmt.Sprintf("1–%d letters, digits, '.', '_', '-' or '~', starting with a letter or digit", MaxLen)

// Valid reports whether id is a valid channel id.
func Valid(id string) bool {
	if id == "" || len(id) > MaxLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'a' <= b && b <= 'z', 'A' <= b && b <= 'Z', '0' <= b && b <= '9':
		case i > 0 && (b == '.' || b == '_' || b == '-' || b == '~'):
		default:
			return false
		}
	}
	return true
}

// Check returns nil for a valid id, else an error that states the rule
// and quotes (the start of) id.
func Check(id string) error {
	if Valid(id) {
		return nil
	}
	shown := id
	if len(shown) > 40 {
		shown = shown[:40] + "…"
	}
	return fmt.Errorf("channel id must be %s; got %q", Rule, shown)
}
