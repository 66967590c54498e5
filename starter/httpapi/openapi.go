package httpapi

import (
	_ "embed"
	"net/http"
)

// openapiYAML describes every route of the starter; TestOpenAPICoversRoutes
// keeps it true.
//
//go:embed openapi.yaml
var openapiYAML []byte

func (s *Server) openapi(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/yaml")
	w.Header().Set("Cache-Control", "public, max-age=300")
	_, _ = w.Write(openapiYAML)
}
