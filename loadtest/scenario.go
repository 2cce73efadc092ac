package loadtest

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Scenarios are named presets: flags given as well override them.
var Scenarios = map[string]Config{
	// A match kicks off: the crowd arrives at a steady clip and stays.
	"flash-crowd": {Peers: 200, Duration: 40 * time.Second, Bitrate: 400_000, Arrival: "linear"},
	// Viewers come and go fast and mostly without a goodbye.
	"churn-storm": {Peers: 100, Duration: 60 * time.Second, Bitrate: 500_000, Churn: 30},
	// Most viewers can relay little or nothing (phones, thin uplinks).
	"low-upload-crowd": {Peers: 120, Duration: 40 * time.Second, Bitrate: 500_000, ZeroUpload: 0.3, LowUpload: 0.4},
	// Breaking news: a trickle, then a surge that keeps growing, with some
	// viewers leaving again.
	"news-event": {Peers: 200, Duration: 60 * time.Second, Bitrate: 400_000, Arrival: "exponential", JoinOver: 30 * time.Second, Churn: 5},
}

// ScenarioNames lists the presets, sorted.
func ScenarioNames() []string {
	names := make([]string, 0, len(Scenarios))
	for n := range Scenarios {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Apply fills the zero fields of c from the named scenario.
func Apply(name string, c Config) (Config, error) {
	s, ok := Scenarios[name]
	if !ok {
		return c, fmt.Errorf("--scenario %q does not exist; scenarios: %s", name, strings.Join(ScenarioNames(), ", "))
	}
	if c.Peers == 0 {
		c.Peers = s.Peers
	}
	if c.Duration == 0 {
		c.Duration = s.Duration
	}
	if c.Bitrate == 0 {
		c.Bitrate = s.Bitrate
	}
	if c.Churn == 0 {
		c.Churn = s.Churn
	}
	if c.Arrival == "" {
		c.Arrival = s.Arrival
	}
	if c.JoinOver == 0 {
		c.JoinOver = s.JoinOver
	}
	if c.ZeroUpload == 0 && c.LowUpload == 0 {
		c.ZeroUpload, c.LowUpload = s.ZeroUpload, s.LowUpload
	}
	c.Scenario = name
	return c, nil
}

// arrivals returns when each of the n first viewers joins, from the start.
func (c Config) arrivals() []time.Duration {
	if len(c.JoinTimes) > 0 {
		return c.JoinTimes
	}
	out := make([]time.Duration, c.Peers)
	T := float64(c.JoinOver)
	for i := range out {
		f := float64(i) / float64(c.Peers)
		switch c.Arrival {
		case "exponential":
			// The arrival rate grows as e^(a t / T): few at first, a
			// surge at the end. F(t) = (e^(a t/T) - 1) / (e^a - 1).
			const a = 4.0
			out[i] = time.Duration(T / a * math.Log1p(f*(math.Exp(a)-1)))
		default:
			out[i] = time.Duration(T * f)
		}
	}
	return out
}

// ReadJoinTimes reads a CSV of join times, one per line, in seconds from
// the start (a header line and a second column are allowed; the first
// column counts). Bad rows are errors naming the line.
func ReadJoinTimes(path string) ([]time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("--arrival-csv: %w", err)
	}
	defer f.Close()
	return parseJoinTimes(f, path)
}

func parseJoinTimes(r io.Reader, name string) ([]time.Duration, error) {
	var out []time.Duration
	sc := bufio.NewScanner(r)
	for line := 1; sc.Scan(); line++ {
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		field, _, _ := strings.Cut(text, ",")
		v, err := strconv.ParseFloat(strings.TrimSpace(field), 64)
		if err != nil {
			if line == 1 && len(out) == 0 {
				continue // a header
			}
			return nil, fmt.Errorf("--arrival-csv %s line %d: %q is not a time in seconds", name, line, field)
		}
		if v < 0 || v > 24*3600 || math.IsNaN(v) {
			return nil, fmt.Errorf("--arrival-csv %s line %d: %v s is outside [0, 86400]", name, line, v)
		}
		out = append(out, time.Duration(v*float64(time.Second)))
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("--arrival-csv %s: %w", name, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--arrival-csv %s: no join times", name)
	}
	slices.Sort(out)
	return out, nil
}
