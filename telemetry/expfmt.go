package telemetry

import (
	"math"
	"strconv"
	"unicode/utf8"
)

// appendText appends f in the text exposition format 0.0.4.
func (f *family) appendText(b []byte) []byte {
	if f.fn != nil {
		b = f.appendHeader(b)
		b = append(b, f.name...)
		b = append(b, ' ')
		b = appendFloat(b, f.fn())
		return append(b, '\n')
	}
	ss := *f.sorted.Load()
	if len(ss) == 0 {
		return b
	}
	b = f.appendHeader(b)
	var scratch [32]uint64 // bucket counts; most histograms fit without allocating
	counts := scratch[:0]
	for _, s := range ss {
		switch f.kind {
		case kindCounter:
			b = appendSeries(b, f.name, "", f.labelNames, s.values, "")
			b = appendFloat(b, s.counter.Value())
			b = append(b, '\n')
		case kindGauge:
			b = appendSeries(b, f.name, "", f.labelNames, s.values, "")
			b = appendFloat(b, s.gauge.Value())
			b = append(b, '\n')
		case kindHistogram:
			var sum float64
			var total uint64
			counts, sum = s.hist.counts(counts[:0])
			for i, c := range counts {
				total += c
				b = appendSeries(b, f.name, "_bucket", f.labelNames, s.values, f.leValues[i])
				b = strconv.AppendUint(b, total, 10)
				b = append(b, '\n')
			}
			b = appendSeries(b, f.name, "_sum", f.labelNames, s.values, "")
			b = appendFloat(b, sum)
			b = append(b, '\n')
			b = appendSeries(b, f.name, "_count", f.labelNames, s.values, "")
			b = strconv.AppendUint(b, total, 10)
			b = append(b, '\n')
		}
	}
	return b
}

func (f *family) appendHeader(b []byte) []byte {
	b = append(b, "# HELP "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = appendEscaped(b, f.help, false)
	b = append(b, "\n# TYPE "...)
	b = append(b, f.name...)
	b = append(b, ' ')
	b = append(b, f.kind.typeName()...)
	return append(b, '\n')
}

// appendSeries appends `name+suffix{labels} ` including the trailing space;
// le, when not empty, is added as the last label.
func appendSeries(b []byte, name, suffix string, names, values []string, le string) []byte {
	b = append(b, name...)
	b = append(b, suffix...)
	if len(names) > 0 || le != "" {
		b = append(b, '{')
		for i, n := range names {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, n...)
			b = append(b, `="`...)
			b = appendEscaped(b, values[i], true)
			b = append(b, '"')
		}
		if le != "" {
			if len(names) > 0 {
				b = append(b, ',')
			}
			b = append(b, `le="`...)
			b = append(b, le...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, ' ')
}

// appendEscaped appends s with backslash and newline escaped, and, for label
// values, double quotes too. Invalid UTF-8 becomes U+FFFD so the output is
// always valid UTF-8.
func appendEscaped(b []byte, s string, quote bool) []byte {
	clean := utf8.ValidString(s)
	for i := 0; clean && i < len(s); i++ {
		if c := s[i]; c == '\\' || c == '\n' || quote && c == '"' {
			clean = false
		}
	}
	if clean {
		return append(b, s...)
	}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == '\\':
			b = append(b, `\\`...)
		case r == '\n':
			b = append(b, `\n`...)
		case r == '"' && quote:
			b = append(b, `\"`...)
		case r == utf8.RuneError && size == 1:
			b = utf8.AppendRune(b, utf8.RuneError)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return b
}

// appendFloat formats v as Prometheus expects: shortest round-trip decimal,
// and +Inf, -Inf, NaN spelled out.
func appendFloat(b []byte, v float64) []byte {
	switch {
	case math.IsInf(v, 1):
		return append(b, "+Inf"...)
	case math.IsInf(v, -1):
		return append(b, "-Inf"...)
	case math.IsNaN(v):
		return append(b, "NaN"...)
	}
	return strconv.AppendFloat(b, v, 'g', -1, 64)
}
