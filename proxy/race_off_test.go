//go:build !race

package proxy

// raceEnabled: the race detector drops sync.Pool items at random, so allocation counts differ.
const raceEnabled = false
