// Package search owns course search: the OpenSearch/Elasticsearch index of
// course sections (its mapping, analyzers and alias), the feed that keeps it
// in step with the MariaDB replica, the search query itself, and the SQL
// fallback used when the search node is unavailable. It imports neither Gin
// nor melody; cmd/api wires GET /api/v1/courses to a Service.
//
// # Pieces
//
//   - Client talks to the node through go-elasticsearch/v8 (esapi over
//     elastictransport), using only REST calls that Elasticsearch 8 and
//     OpenSearch 2/3 share: index create/delete/exists, _aliases,
//     _alias, _bulk, _search (query, post_filter, aggs, highlight,
//     search_after), _refresh, _settings.
//   - SQL answers the same Query from the replica with LIKE, the same
//     filters, facets and sort orders, and keyset pagination.
//   - Service is what handlers call: node first with a short timeout
//     (300ms), SQL on any node failure (Result.Source "sql", Degraded
//     true, enrollq_search_fallback_total incremented), and a circuit
//     breaker that keeps traffic off a failed node for ProbeAfter (5s),
//     then lets one request probe it and returns to the node when it
//     answers.
//   - Indexer feeds the index from the replica (never the primary) and
//     rebuilds it behind the alias.
//
// # OpenSearch and the v8 client's product check
//
// go-elasticsearch/v8 refuses to continue after the first 2xx response
// that lacks "X-Elastic-Product: Elasticsearch" ("the client noticed that
// the server is not Elasticsearch..."); the maintainers' position
// (elastic/go-elasticsearch#782, #324) is that other products are not
// supported, and the client has no switch to turn the check off. OpenSearch
// does not send the header. We keep the real client and add one
// elastictransport interceptor (Config.Interceptors, openSearchCompat in
// client.go) that (1) sets the header on responses that lack it, and (2)
// rewrites the "application/vnd.elasticsearch+json; compatible-with=8"
// media type, which the client sends when ELASTIC_CLIENT_APIVERSIONING is
// set and OpenSearch rejects, to application/json. Against Elasticsearch 8
// the interceptor changes nothing that matters: the header is already
// there and application/json is its current API. The client's retries are
// off (the Service decides what a failure means) and the meta header is
// not sent.
//
// # Index
//
// Searches and writes use an alias (config SearchIndex, "courses"); the
// real index is "<alias>_<UTC timestamp>". Korean text (title, professor,
// department) is analysed with the analysis-common CJK bigram approach
// (standard tokenizer, cjk_width, lowercase, cjk_bigram with unigrams at
// index time; bigrams only at search time, which still emits a lone
// syllable as a unigram, so one- and two-syllable queries both work and
// highlights stay tight) because the nori plugin is not available; title
// and code also have edge n-gram (1-20) sub-fields for search-as-you-type,
// searched without n-grams. title_en uses the english analyzer and is
// matched with fuzziness AUTO ("Algoritms" finds Algorithms). department,
// category, credits and days are keywords/integers for filters and facets;
// meeting times are stored as nested slots plus the earliest start and
// latest end, which the "meetings all within [From, To]" filter uses.
// index.json is the full definition.
//
// Relevance is tiered with constant scores so a better kind of match
// always wins: exact code, code prefix, title prefix, title bigrams, exact
// professor, professor bigrams, all words across fields, English title
// (prefix), English fuzzy, department; BM25 on the title orders hits
// within a tier, then code, section and id.
//
// # Guarantees
//
//   - Freshness: the incremental feed reads the replica every second by
//     (updated_at, id) watermark with FeedStatement (the same statement as
//     the production Logstash pipeline in deploy/logstash), bulk-indexes
//     the changed sections and refreshes, so a seat change is searchable
//     about one interval plus replication lag after its commit (the tests
//     hold it to 2s). courses.updated_at moves on every write, including
//     enrolled, so seat counts flow through the watermark. Writers that
//     change course_meetings must also touch courses.updated_at.
//   - No lost changes: the watermark bound is inclusive and each pass
//     re-reads an overlap window (2s) and skips versions it already
//     indexed, so rows sharing a timestamp and transactions that commit
//     shortly after stamping updated_at are not missed. Soft-deleted
//     sections are deleted from the index; hard deletes need Rebuild.
//   - No stale overwrite: every write is versioned with the row's
//     updated_at in microseconds (version_type external_gte), so
//     concurrent feeds (a rebuild's catch-up, Logstash) cannot replace a
//     newer document with an older one.
//   - Rebuild without downtime: a new index is loaded from the replica,
//     caught up, and swapped in with one _aliases call (remove + add);
//     searches see the old index or the new one, never neither. The old
//     index is deleted afterwards.
//   - Cursors (Result.Next) are opaque, bound to the query, the sort and
//     the backend that issued them; a foreign cursor is ErrBadCursor, never
//     a page with skipped or repeated hits. A listing begun on the
//     fallback continues there.
//   - Facets are computed on the first page; a facet's counts apply every
//     other filter but its own, and choosing a bucket gives exactly its
//     count, on both backends.
//
// Run one Indexer per deployment (cmd/api may run it behind the scheduler
// lock, or a dedicated process); any number of processes may search.
package search
