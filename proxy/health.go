package proxy

import (
	"net/http"

	"github.com/zest-proxy/zest/internal/redisx"
)

// Health is the JSON of GET /healthz. Status is "ok" whenever zest serves, including while
// Redis is down (it then serves from its local tiers and local limits, which Redis says).
type Health struct {
	Status string         `json:"status"`
	Redis  *redisx.Health `json:"redis,omitempty"`
}

// serveHealth answers GET /healthz: 200 {"status":"ok"}, plus the Redis state when configured.
func (h *Handler) serveHealth(w http.ResponseWriter) {
	st := Health{Status: "ok"}
	if h.opts.Redis != nil {
		rh := h.opts.Redis.Health()
		st.Redis = &rh
	}
	writeJSON(w, http.StatusOK, st)
}
