package search

import (
	"bytes"
	"context"
	_ "embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/elastic/elastic-transport-go/v8/elastictransport"
	"github.com/elastic/go-elasticsearch/v8"
	"github.com/elastic/go-elasticsearch/v8/esapi"
)

// indexDefinition holds the settings and mappings of a course index.
//
//go:embed index.json
var indexDefinition []byte

// IndexDefinition returns the settings and mappings every course index is
// created with (the body of PUT /<index>).
func IndexDefinition() []byte { return bytes.Clone(indexDefinition) }

// ErrNotFound is returned when the alias or index does not exist.
var ErrNotFound = errors.New("search index not found")

// ClientConfig configures a Client.
type ClientConfig struct {
	// Addresses of the nodes, e.g. "http://127.0.0.1:9200".
	Addresses []string
	// Alias is the name searches and incremental writes go to; the real
	// index behind it is "<Alias>_<timestamp>" (see Indexer.Rebuild).
	Alias    string
	Username string
	Password string
	// MaxConns bounds idle keep-alive connections per node (default 128):
	// a search costs one request, so this is the search concurrency that
	// does not pay for new TCP connections.
	MaxConns int
	// Transport replaces the HTTP transport (tests). The product header
	// interceptor is still applied on top of it.
	Transport http.RoundTripper
}

// Client talks to OpenSearch 2 or Elasticsearch 8 through
// go-elasticsearch/v8's esapi, using only the REST subset both share.
// It is safe for concurrent use.
type Client struct {
	es    *elasticsearch.Client
	alias string
}

// NewClient returns a Client. It does not contact the node.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Alias == "" {
		return nil, errors.New("search: client needs an alias name")
	}
	if len(cfg.Addresses) == 0 {
		cfg.Addresses = []string{"http://127.0.0.1:9200"}
	}
	if cfg.MaxConns == 0 {
		cfg.MaxConns = 128
	}
	tp := cfg.Transport
	if tp == nil {
		tp = &http.Transport{
			Proxy:                 nil,
			DialContext:           (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:          cfg.MaxConns * len(cfg.Addresses),
			MaxIdleConnsPerHost:   cfg.MaxConns,
			IdleConnTimeout:       90 * time.Second,
			ResponseHeaderTimeout: 30 * time.Second,
			// Answers are small and the node is near: gzip would cost
			// the node more CPU than the bytes it saves.
			DisableCompression: true,
		}
	}
	es, err := elasticsearch.NewClient(elasticsearch.Config{
		Addresses: cfg.Addresses,
		Username:  cfg.Username,
		Password:  cfg.Password,
		Transport: tp,
		// A failed node is the Service's business (fallback + breaker);
		// retrying inside the client would only spend the caller's budget.
		DisableRetry:            true,
		EnableCompatibilityMode: false,
		DisableMetaHeader:       true,
		Interceptors:            []elastictransport.InterceptorFunc{openSearchCompat},
	})
	if err != nil {
		return nil, fmt.Errorf("search: new client for %v: %w", cfg.Addresses, err)
	}
	return &Client{es: es, alias: cfg.Alias}, nil
}

// Alias returns the alias name this client searches.
func (c *Client) Alias() string { return c.alias }

// openSearchCompat lets go-elasticsearch/v8 talk to OpenSearch (see doc.go):
//   - requests: the v8 "compatible-with=8" media type (switched on by the
//     ELASTIC_CLIENT_APIVERSIONING environment variable) is replaced by
//     plain application/json, which OpenSearch accepts and Elasticsearch 8
//     treats as its current version;
//   - responses: a successful response without X-Elastic-Product gets
//     "X-Elastic-Product: Elasticsearch", because the client refuses to
//     continue after a 2xx response without it (genuineCheckHeader).
func openSearchCompat(next elastictransport.RoundTripFunc) elastictransport.RoundTripFunc {
	return func(req *http.Request) (*http.Response, error) {
		for _, h := range []string{"Accept", "Content-Type"} {
			if strings.Contains(req.Header.Get(h), "vnd.elasticsearch+") {
				req.Header.Set(h, "application/json")
			}
		}
		res, err := next(req)
		if err == nil && res.Header.Get("X-Elastic-Product") == "" {
			res.Header.Set("X-Elastic-Product", "Elasticsearch")
		}
		return res, err
	}
}

// Ping checks that the node answers (GET /).
func (c *Client) Ping(ctx context.Context) error {
	_, err := c.do(ctx, esapi.InfoRequest{}, nil)
	if err != nil {
		return fmt.Errorf("ping search node: %w", err)
	}
	return nil
}

// responseError is an error answer of the node.
type responseError struct {
	Status int
	Type   string
	Reason string
}

func (e *responseError) Error() string {
	return fmt.Sprintf("status %d: %s: %s", e.Status, e.Type, e.Reason)
}

// do runs req and decodes a successful JSON answer into out (if not nil).
// Error answers become *responseError (ErrNotFound for 404s).
func (c *Client) do(ctx context.Context, req esapi.Request, out any) (int, error) {
	res, err := req.Do(ctx, c.es)
	if err != nil {
		return 0, err
	}
	defer res.Body.Close()
	if res.IsError() {
		body, _ := io.ReadAll(io.LimitReader(res.Body, 64<<10))
		re := &responseError{Status: res.StatusCode, Reason: strings.TrimSpace(string(body))}
		var e struct {
			Error struct {
				Type   string `json:"type"`
				Reason string `json:"reason"`
			} `json:"error"`
		}
		if json.Unmarshal(body, &e) == nil && e.Error.Type != "" {
			re.Type, re.Reason = e.Error.Type, e.Error.Reason
		}
		if res.StatusCode == http.StatusNotFound {
			return res.StatusCode, fmt.Errorf("%w: %v", ErrNotFound, re)
		}
		return res.StatusCode, re
	}
	if out != nil {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			return res.StatusCode, fmt.Errorf("decode answer: %w", err)
		}
	} else {
		_, _ = io.Copy(io.Discard, res.Body)
	}
	return res.StatusCode, nil
}

// AliasTargets returns the indexes the alias points to (none if it does
// not exist yet).
func (c *Client) AliasTargets(ctx context.Context) ([]string, error) {
	t, _, err := c.aliasTargets(ctx, c.alias)
	return t, err
}

// aliasTargets returns the indexes the alias points to (nil, nil if the
// alias does not exist) and whether a concrete index carries the alias's
// name instead.
func (c *Client) aliasTargets(ctx context.Context, alias string) (indexes []string, concrete bool, err error) {
	var out map[string]json.RawMessage
	_, err = c.do(ctx, esapi.IndicesGetAliasRequest{Name: []string{alias}}, &out)
	if errors.Is(err, ErrNotFound) {
		// Either nothing is called alias, or a concrete index is.
		_, ierr := c.do(ctx, esapi.IndicesExistsRequest{Index: []string{alias}}, nil)
		if ierr == nil {
			return nil, true, nil
		}
		if errors.Is(ierr, ErrNotFound) {
			return nil, false, nil
		}
		return nil, false, fmt.Errorf("check index %s: %w", alias, ierr)
	}
	if err != nil {
		return nil, false, fmt.Errorf("get alias %s: %w", alias, err)
	}
	for name := range out {
		indexes = append(indexes, name)
	}
	return indexes, false, nil
}

// createIndex creates index with the course definition, optionally with
// its settings overridden (e.g. refresh off during a bulk load), and with
// alias attached when alias != "".
func (c *Client) createIndex(ctx context.Context, index, alias string, settings map[string]any) error {
	var def map[string]any
	if err := json.Unmarshal(indexDefinition, &def); err != nil {
		return fmt.Errorf("parse index definition: %w", err)
	}
	idx := def["settings"].(map[string]any)["index"].(map[string]any)
	for k, v := range settings {
		idx[k] = v
	}
	if alias != "" {
		def["aliases"] = map[string]any{alias: map[string]any{}}
	}
	body, _ := json.Marshal(def)
	if _, err := c.do(ctx, esapi.IndicesCreateRequest{Index: index, Body: bytes.NewReader(body)}, nil); err != nil {
		return fmt.Errorf("create index %s: %w", index, err)
	}
	return nil
}

// putSettings updates dynamic index settings.
func (c *Client) putSettings(ctx context.Context, index string, settings map[string]any) error {
	body, _ := json.Marshal(map[string]any{"index": settings})
	if _, err := c.do(ctx, esapi.IndicesPutSettingsRequest{Index: []string{index}, Body: bytes.NewReader(body)}, nil); err != nil {
		return fmt.Errorf("update settings of %s: %w", index, err)
	}
	return nil
}

// refresh makes everything indexed so far searchable.
func (c *Client) refresh(ctx context.Context, index string) error {
	if _, err := c.do(ctx, esapi.IndicesRefreshRequest{Index: []string{index}}, nil); err != nil {
		return fmt.Errorf("refresh %s: %w", index, err)
	}
	return nil
}

// DeleteIndex deletes an index (missing is not an error).
func (c *Client) DeleteIndex(ctx context.Context, index string) error {
	_, err := c.do(ctx, esapi.IndicesDeleteRequest{Index: []string{index}}, nil)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return fmt.Errorf("delete index %s: %w", index, err)
	}
	return nil
}

// bulkOp is one _bulk action: index doc under id, or delete id when doc is
// nil. version is the row's updated_at in microseconds.
type bulkOp struct {
	id      uint64
	version int64
	doc     *document
}

// bulk sends ops to index in one _bulk request and fails if any item failed.
// Every op carries the row version with version_type external_gte, so when
// two feeds race (the incremental pass and a rebuild's catch-up, or
// Logstash and the in-tree indexer) an older row can never overwrite a
// newer one: the node answers 409 to the stale write, which is success here,
// as is a delete of a missing document.
func (c *Client) bulk(ctx context.Context, index string, ops []bulkOp) error {
	if len(ops) == 0 {
		return nil
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, op := range ops {
		if op.doc == nil {
			fmt.Fprintf(&buf, `{"delete":{"_id":"%d","version":%d,"version_type":"external_gte"}}`+"\n", op.id, op.version)
			continue
		}
		fmt.Fprintf(&buf, `{"index":{"_id":"%d","version":%d,"version_type":"external_gte"}}`+"\n", op.id, op.version)
		if err := enc.Encode(op.doc); err != nil {
			return fmt.Errorf("encode course %d: %w", op.id, err)
		}
	}
	var out struct {
		Errors bool `json:"errors"`
		Items  []map[string]struct {
			ID     string          `json:"_id"`
			Status int             `json:"status"`
			Error  json.RawMessage `json:"error"`
		} `json:"items"`
	}
	req := esapi.BulkRequest{Index: index, Body: &buf}
	if index == c.alias {
		// Never let a write auto-create a concrete index with a dynamic
		// mapping where the alias should be.
		t := true
		req.RequireAlias = &t
	}
	if _, err := c.do(ctx, req, &out); err != nil {
		return fmt.Errorf("bulk %d ops into %s: %w", len(ops), index, err)
	}
	if !out.Errors {
		return nil
	}
	var failed []string
	missing := false
	for _, item := range out.Items {
		for action, r := range item {
			if r.Status >= 300 && r.Status != http.StatusConflict && !(action == "delete" && r.Status == http.StatusNotFound) {
				failed = append(failed, fmt.Sprintf("%s %s: %d %s", action, r.ID, r.Status, r.Error))
				missing = missing || r.Status == http.StatusNotFound
			}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	if missing {
		return fmt.Errorf("bulk into %s: %w: %s", index, ErrNotFound, failed[0])
	}
	if len(failed) > 3 {
		failed = append(failed[:3], fmt.Sprintf("and %d more", len(failed)-3))
	}
	return fmt.Errorf("bulk into %s: %s", index, strings.Join(failed, "; "))
}
