//go:build race

package logfmt

// raceEnabled reports whether the race detector is on; it makes sync.Pool drop
// items at random, so allocation counts are then meaningless.
const raceEnabled = true
