//go:build race

package peer

// raceEnabled: the race detector slows pion several times over, so the
// largest swarms shrink under it to what two cores carry.
const raceEnabled = true
