package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/gin-gonic/gin"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/enrollq/enrollq/internal/config"
	"github.com/enrollq/enrollq/internal/search"
)

var errSearchUnavailable = apiError{http.StatusServiceUnavailable, "search_unavailable",
	"강좌 검색을 잠시 사용할 수 없습니다. 잠시 후 다시 시도하세요.", "Course search is temporarily unavailable; retry shortly."}

var errBadCursor = apiError{http.StatusBadRequest, "bad_cursor",
	"페이지 정보가 만료되었습니다. 처음부터 다시 검색하세요.", "The page cursor is invalid or expired; start the search again."}

// startSearch wires course search: the node (OpenSearch / Elasticsearch)
// with the SQL fallback on the replica, and, when indexer is set, the
// incremental indexer that feeds the node from the replica.
func startSearch(ctx context.Context, cfg config.Config, d *deps, reg *prometheus.Registry, log *slog.Logger, indexer bool) (*search.Service, error) {
	client, err := search.NewClient(search.ClientConfig{Addresses: []string{cfg.SearchURL}, Alias: cfg.SearchIndex})
	if err != nil {
		return nil, fmt.Errorf("search client: %w", err)
	}
	svc, err := search.NewService(client, search.NewSQL(d.replica), search.ServiceConfig{Registerer: reg, Logger: log})
	if err != nil {
		return nil, fmt.Errorf("search service: %w", err)
	}
	readyProbes["search"] = client.Ping
	if indexer {
		ix, err := search.NewIndexer(search.IndexerConfig{Client: client, Replica: d.replica, Logger: log})
		if err != nil {
			return nil, fmt.Errorf("search indexer: %w", err)
		}
		go func() {
			if err := ix.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
				log.Error("search indexer stopped", "err", err)
			}
		}()
	}
	return svc, nil
}

// searchCourses answers GET /api/v1/courses from the search service:
// q, department, category, credits, days=MON,WED, from/to (HH:MM), open,
// sort, size, after. The answer says which backend served it ("source") and
// whether it was the fallback ("degraded").
func (s *server) searchCourses(c *gin.Context) {
	q, err := search.QueryFromValues(c.Request.URL.Query())
	if err != nil {
		abort(c, errBadQuery)
		return
	}
	res, err := s.search.Search(c.Request.Context(), q)
	switch {
	case err == nil:
		c.JSON(http.StatusOK, res)
	case errors.Is(err, search.ErrInvalidQuery):
		abort(c, errBadQuery)
	case errors.Is(err, search.ErrBadCursor):
		abort(c, errBadCursor)
	default:
		_ = c.Error(err)
		abort(c, errSearchUnavailable)
	}
}
