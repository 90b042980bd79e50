// Package cputime reads the CPU time the process has used, so benchmarks can report CPU per
// operation: a loaded machine distorts it far less than wall time, and it counts the work a
// benchmark leaves to background goroutines.
package cputime
