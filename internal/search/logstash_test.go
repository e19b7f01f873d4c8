package search

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jmoiron/sqlx"
)

// TestLogstashStatement runs the production Logstash pipeline's SQL the way
// the jdbc input does (with :sql_last_value inlined) against a real schema
// and the fixture, indexes the rows with the real mapping and searches them.
func TestLogstashStatement(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile("../../deploy/logstash/sql/courses.sql")
	if err != nil {
		t.Fatal(err)
	}
	if string(raw) != FeedStatement {
		t.Fatal("deploy/logstash/sql/courses.sql and internal/search/courses.sql differ: keep them byte-identical")
	}
	conf, err := os.ReadFile("../../deploy/logstash/pipeline/courses.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		`statement_filepath => "/usr/share/logstash/sql/courses.sql"`,
		`tracking_column => "updated_at"`,
		`document_id => "%{id}"`,
		`version_type => "external_gte"`,
	} {
		if !strings.Contains(string(conf), want) {
			t.Errorf("courses.conf lacks %s", want)
		}
	}

	b := setup(t, setupOpts{noIndex: true, modify: catalogState})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	// Logstash replaces :sql_last_value with a literal; its first run uses
	// the epoch.
	run := func(last string) []feedRow {
		stmt := strings.ReplaceAll(string(raw), ":sql_last_value", "'"+last+"'")
		var rows []feedRow
		if err := sqlx.SelectContext(ctx, b.replica, &rows, stmt); err != nil {
			t.Fatalf("run courses.sql with %s: %v", last, err)
		}
		return rows
	}
	rows := run("1970-01-01 00:00:00")
	if len(rows) != len(b.courses) {
		t.Fatalf("statement returned %d rows, want %d (deleted rows included)", len(rows), len(b.courses))
	}
	for i := 1; i < len(rows); i++ {
		p, r := rows[i-1], rows[i]
		if r.UpdatedAt.Before(p.UpdatedAt) || r.UpdatedAt.Equal(p.UpdatedAt) && r.ID < p.ID {
			t.Fatalf("rows not ordered by (updated_at, id) at %d", i)
		}
	}
	// The next run starts at the last row's updated_at, inclusive.
	last := rows[len(rows)-1].UpdatedAt.Format("2006-01-02 15:04:05.000000")
	if again := run(last); len(again) == 0 || again[len(again)-1].ID != rows[len(rows)-1].ID {
		t.Fatalf("a run from the last value must re-read the last row, got %d rows", len(again))
	}

	// Index them exactly as the feed does, into an index with the real mapping.
	if err := b.client.createIndex(ctx, b.alias+"_logstash", b.alias, nil); err != nil {
		t.Fatal(err)
	}
	var ops []bulkOp
	deleted := 0
	for _, r := range rows {
		if r.DeletedAt.Valid {
			deleted++
			ops = append(ops, bulkOp{id: r.ID, version: r.UpdatedAt.UnixMicro()})
			continue
		}
		d, err := r.toDocument()
		if err != nil {
			t.Fatal(err)
		}
		ops = append(ops, bulkOp{id: r.ID, version: r.UpdatedAt.UnixMicro(), doc: &d})
	}
	if err := b.client.bulk(ctx, b.alias, ops); err != nil {
		t.Fatal(err)
	}
	if err := b.client.refresh(ctx, b.alias); err != nil {
		t.Fatal(err)
	}
	res, err := b.client.Search(ctx, Query{})
	if err != nil {
		t.Fatal(err)
	}
	if res.Total != int64(len(rows)-deleted) {
		t.Errorf("indexed %d, want %d", res.Total, len(rows)-deleted)
	}
	res, err = b.client.Search(ctx, Query{Text: "자료"})
	if err != nil || len(res.Hits) == 0 || res.Hits[0].Title != "자료구조" {
		t.Fatalf("search 자료 after the Logstash statement: %v %+v", err, res.Hits)
	}
	// The document carries what the Logstash filter derives: days and slots.
	h := res.Hits[0]
	if len(h.Days) == 0 || !regexp.MustCompile(`^(MON|TUE|WED|THU|FRI|SAT|SUN) \d\d:\d\d-\d\d:\d\d`).MatchString(h.Meetings) {
		t.Errorf("hit %+v lacks meetings/days", h)
	}
	res, err = b.client.Search(ctx, Query{Days: []string{"MON"}, From: 9 * 60, To: 12 * 60, OpenOnly: true})
	if err != nil || res.Total == 0 {
		t.Fatalf("time filter on Logstash documents: %v, %d hits", err, res.Total)
	}
}

// logstashHarness runs the pipeline's ruby filter code on JSON rows (one per
// line, as the jdbc input would deliver them) and prints the resulting
// documents, with the fields the pipeline's mutate removes already removed.
const logstashHarness = `
require 'json'
require 'time'
module LogStash; class Timestamp; def initialize(t); @t = t; end; def time; @t; end; end; end
class Event
  def initialize(h); @h = h; end
  def get(k); @h[k]; end
  def set(k, v); @h[k] = v; end
  def to_h; @h; end
end
code = File.read(ARGV[0])
STDIN.each_line do |line|
  h = JSON.parse(line)
  h["updated_at"] = LogStash::Timestamp.new(Time.parse(h["updated_at"]))
  event = Event.new(h)
  eval(code)
  out = event.to_h.reject { |k, _| k.start_with?("[@metadata]") || %w[@timestamp @version deleted_at].include?(k) }
  out["_version"] = event.get("[@metadata][version]")
  out["_action"] = event.get("[@metadata][action]")
  puts JSON.generate(out)
end
`

// TestLogstashFilterShape checks that the pipeline's ruby filter builds the
// same document as the Go indexer from the same rows. It needs a ruby
// interpreter (apt-get install ruby) and is skipped without one.
func TestLogstashFilterShape(t *testing.T) {
	ruby, err := exec.LookPath("ruby")
	if err != nil {
		t.Skip("ruby not installed: the Logstash filter's shape is not checked here (apt-get install ruby)")
	}
	conf, err := os.ReadFile("../../deploy/logstash/pipeline/courses.conf")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?s)code => '\n(.*?)\n    '`).FindSubmatch(conf)
	if m == nil {
		t.Fatal("no ruby code block in courses.conf")
	}
	dir := t.TempDir()
	codeFile, harness := dir+"/filter.rb", dir+"/harness.rb"
	if err := os.WriteFile(codeFile, m[1], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(harness, []byte(logstashHarness), 0o644); err != nil {
		t.Fatal(err)
	}

	upd := time.Date(2026, 3, 12, 10, 15, 30, 123456000, time.UTC)
	rows := []feedRow{
		{ID: 4, Code: "CSE4051", Section: "01", Title: "컴파일러", TitleEn: "Compilers", Department: "컴퓨터공학과",
			Professor: "권유진", Credits: 3, Capacity: 60, Enrolled: 12, SeatsLeft: 48, IsOpen: true,
			Meetings: "MON 18:00-19:15;WED 18:00-19:15", Room: "학생회관 613", Category: "전공선택",
			Slots: sql.NullString{String: "0:1080-1155;2:1080-1155", Valid: true}, UpdatedAt: upd},
		{ID: 5, Code: "GEN1", Section: "02", Title: "온라인", Credits: 1, IsOpen: false, UpdatedAt: upd.Add(5 * time.Microsecond)},
		{ID: 6, Code: "X", Section: "01", Title: "삭제", Credits: 2, DeletedAt: sql.NullTime{Time: upd, Valid: true},
			Slots: sql.NullString{String: "4:540-710", Valid: true}, UpdatedAt: upd},
	}
	var in bytes.Buffer
	for _, r := range rows {
		// The jdbc input's view of the row: column names, SQL NULL as nil.
		row := map[string]any{
			"id": r.ID, "code": r.Code, "section": r.Section, "title": r.Title, "title_en": r.TitleEn,
			"department": r.Department, "professor": r.Professor, "credits": r.Credits, "capacity": r.Capacity,
			"enrolled": r.Enrolled, "seats_left": r.SeatsLeft, "is_open": r.IsOpen, "meetings": r.Meetings,
			"room": r.Room, "category": r.Category, "slots": nil, "deleted_at": nil,
			"updated_at": r.UpdatedAt.Format(time.RFC3339Nano),
		}
		if r.Slots.Valid {
			row["slots"] = r.Slots.String
		}
		if r.DeletedAt.Valid {
			row["deleted_at"] = r.DeletedAt.Time.Format(time.RFC3339Nano)
		}
		b, _ := json.Marshal(row)
		in.Write(append(b, '\n'))
	}
	cmd := exec.Command(ruby, harness, codeFile)
	cmd.Stdin = &in
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("ruby filter: %v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(rows) {
		t.Fatalf("ruby printed %d documents for %d rows:\n%s", len(lines), len(rows), out)
	}
	for i, r := range rows {
		var got map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &got); err != nil {
			t.Fatal(err)
		}
		wantAction := "index"
		if r.DeletedAt.Valid {
			wantAction = "delete"
		}
		if got["_action"] != wantAction || int64(got["_version"].(float64)) != r.UpdatedAt.UnixMicro() {
			t.Errorf("row %d: action %v version %v, want %s %d", r.ID, got["_action"], got["_version"], wantAction, r.UpdatedAt.UnixMicro())
		}
		delete(got, "_action")
		delete(got, "_version")
		d, err := r.toDocument()
		if err != nil {
			t.Fatal(err)
		}
		var want map[string]any
		b, _ := json.Marshal(d)
		_ = json.Unmarshal(b, &want)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("row %d: Logstash document differs from the Go indexer's (-go +logstash):\n%s", r.ID, diff)
		}
	}
}
