//go:build !race

package h1

// raceEnabled: the race detector allocates in places a plain build does not, so allocation
// counts differ.
const raceEnabled = false
