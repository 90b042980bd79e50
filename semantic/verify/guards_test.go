package verify

import (
	"strings"
	"testing"
)

// TestGuardsMode checks that Guards refuses on every hard guard and leaves the rest to the
// embedding: words that do not align are no reason to refuse.
func TestGuardsMode(t *testing.T) {
	v, err := New(Options{Mode: Guards})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, a, b string
		same       bool
		rule       string
	}{
		{"paraphrase without aligned words", "What is a good diet for a dog?", "What should a dog eat to stay healthy?", true, ""},
		{"extra known word", "How do I roast vegetables?", "How do I roast vegetables quickly?", true, ""},
		{"numbers", "Convert 14 miles to km.", "Convert 40 miles to km.", false, "numbers"},
		{"negation", "Which countries use the euro?", "Which countries do not use the euro?", false, "negation"},
		{"swapped roles", "Did the Lakers beat the Celtics?", "Did the Celtics beat the Lakers?", false, "swapped"},
		{"particles", "How do I turn on auto-save?", "How do I turn off auto-save?", false, "opposite"},
		{"antonyms", "How do I export a table?", "How do I import a table?", false, "antonyms"},
		{"time", "What should I eat before a race?", "What should I eat after a race?", false, "opposite"},
		{"sequence", "When is the next eclipse?", "When was the last eclipse?", false, "time"},
		{"unknown word", "How do I declare a constant in Kotlin?", "How do I declare a constant in Scala?", false, "unknown word"},
		{"name", "What is the capital of Austria?", "What is the capital of Hungary?", false, "name"},
		{"question type", "Who painted the Mona Lisa?", "When was the Mona Lisa painted?", false, "question type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, why := v.Explain(tt.a, tt.b)
			if got != tt.same {
				t.Fatalf("Guards: Same(%q, %q) = %v (%s), want %v", tt.a, tt.b, got, why, tt.same)
			}
			if !tt.same && !strings.Contains(why, tt.rule) {
				t.Errorf("rejected by %q, want rule containing %q", why, tt.rule)
			}
		})
	}
	if _, err := New(Options{Mode: "lenient"}); err == nil {
		t.Error("New accepted an unknown mode")
	}
}
