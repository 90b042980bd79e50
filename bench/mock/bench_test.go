package mock

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// BenchmarkChat measures the mock's own cost per plain chat answer, which
// every bench scenario pays on the upstream side.
func BenchmarkChat(b *testing.B) {
	m := New(Options{})
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		m.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(chatBody)))
	}
}
