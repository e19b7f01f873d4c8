package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"
)

// TestOpenAPICoversRoutes: every route registered in Gin is documented in
// openapi.json with its method, every documented route exists, and every
// stable error code is listed with Korean and English messages.
func TestOpenAPICoversRoutes(t *testing.T) {
	var doc struct {
		OpenAPI    string                                `json:"openapi"`
		Paths      map[string]map[string]json.RawMessage `json:"paths"`
		ErrorCodes []struct {
			Code      string `json:"code"`
			Status    int    `json:"status"`
			Message   string `json:"message"`
			MessageEN string `json:"message_en"`
		} `json:"x-error-codes"`
	}
	if err := json.Unmarshal(openapiJSON, &doc); err != nil {
		t.Fatalf("openapi.json: %v", err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi version %q", doc.OpenAPI)
	}
	e := newTestEnv(t, 0)
	param := regexp.MustCompile(`:([a-z_]+)`)
	registered := map[string]bool{}
	for _, r := range e.h.Routes() {
		if strings.HasPrefix(r.Path, "/web") || r.Path == "/" {
			continue
		}
		p := param.ReplaceAllString(r.Path, "{$1}")
		m := strings.ToLower(r.Method)
		registered[m+" "+p] = true
		if _, ok := doc.Paths[p][m]; !ok {
			t.Errorf("%s %s is registered but not in openapi.json", r.Method, p)
		}
	}
	for p, ops := range doc.Paths {
		for m := range ops {
			if !registered[m+" "+p] {
				t.Errorf("openapi.json documents %s %s, which is not registered", m, p)
			}
		}
	}
	listed := map[string]bool{}
	for _, c := range doc.ErrorCodes {
		listed[c.Code] = true
		if c.Message == "" || c.MessageEN == "" || c.Status < 400 {
			t.Errorf("error code %+v", c)
		}
	}
	for _, ae := range allErrors {
		if !listed[ae.Code] {
			t.Errorf("error code %s is not in openapi.json x-error-codes", ae.Code)
		}
	}
	// The document is served as is.
	r := e.do("GET", "/api/v1/openapi.json", "", nil)
	if r.Code != 200 || len(r.Body) != len(openapiJSON) {
		t.Errorf("GET /api/v1/openapi.json: %d, %d bytes", r.Code, len(r.Body))
	}
}
