package catalog

import (
	"encoding/csv"
	"errors"
	"io"
	"strconv"
	"strings"
	"unicode/utf8"
)

// column describes one header column of an import file.
type column struct {
	name     string
	maxLen   int  // in characters, as the schema's VARCHAR(n) counts them
	required bool // the value may not be empty
}

// table reads a CSV import file whose header names the columns in any order.
// It tracks spreadsheet row numbers and collects every problem it finds.
type table struct {
	cr      *csv.Reader
	cols    []column
	pos     map[string]int // column name -> index in each record
	nfields int
	extra   int // line breaks inside quoted fields so far (they are not rows)
	rec     []string
	row     int
	errs    []RowError
	done    bool
	lastBad int // start line of the last record the CSV reader rejected
}

const utf8BOM = "\ufeff"

// newTable reads the header. When the header is unusable (missing, unknown
// or repeated columns) the returned table has errors and no rows.
func newTable(r io.Reader, cols []column) *table {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1 // checked per row, to report rather than stop
	cr.ReuseRecord = false
	t := &table{cr: cr, cols: cols, pos: map[string]int{}}
	hdr, err := cr.Read()
	if errors.Is(err, io.EOF) {
		t.errs = append(t.errs, newError(1, "", CodeEmptyFile, ""))
		t.done = true
		return t
	}
	if err != nil {
		t.errs = append(t.errs, newError(1, "", CodeBadCSV, "", csvReason(err)))
		t.done = true
		return t
	}
	t.nfields = len(hdr)
	t.countExtra(hdr)
	hdr[0] = strings.TrimPrefix(hdr[0], utf8BOM)
	if blank(hdr) {
		t.errs = append(t.errs, newError(1, "", CodeEmptyFile, ""))
		t.done = true
		return t
	}
	allowed := make([]string, len(cols))
	known := map[string]bool{}
	for i, c := range cols {
		allowed[i] = c.name
		known[c.name] = true
	}
	for i, h := range hdr {
		name := strings.ToLower(strings.TrimSpace(h))
		switch {
		case !utf8.ValidString(h):
			t.errs = append(t.errs, newError(1, "", CodeInvalidUTF8, h))
		case !known[name]:
			t.errs = append(t.errs, newError(1, shorten(strings.TrimSpace(h)), CodeUnknownColumn, h, strings.Join(allowed, ",")))
		case t.has(name):
			t.errs = append(t.errs, newError(1, name, CodeDuplicateColumn, h))
		default:
			t.pos[name] = i
		}
	}
	for _, c := range cols {
		if !t.has(c.name) {
			t.errs = append(t.errs, newError(1, c.name, CodeMissingColumn, ""))
		}
	}
	// A first row naming fewer than half of the columns is not this file's
	// header at all (no header, a translated one, the other import's file):
	// one error naming the expected header, not one per column.
	if len(t.errs) > 0 && 2*len(t.pos) < len(cols) {
		t.errs = []RowError{newError(1, "", CodeBadHeader, strings.Join(hdr, ","), strings.Join(allowed, ","))}
	}
	if len(t.errs) > 0 {
		t.done = true
	}
	return t
}

// has reports whether the header named column name.
func (t *table) has(name string) bool {
	_, ok := t.pos[name]
	return ok
}

// countExtra adds the line breaks inside rec's fields to t.extra: a quoted
// field spanning lines is still one spreadsheet row.
func (t *table) countExtra(rec []string) {
	for _, f := range rec {
		t.extra += strings.Count(f, "\n")
	}
}

// next advances to the next data row that has the right number of fields,
// recording malformed rows as errors. Rows whose fields are all blank (what
// spreadsheets export for empty lines) are skipped.
func (t *table) next() bool {
	for !t.done {
		rec, err := t.cr.Read()
		if errors.Is(err, io.EOF) {
			t.done = true
			return false
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				t.errs = append(t.errs, newError(t.row+1, "", CodeBadCSV, "", err.Error()))
				t.done = true
				return false
			}
			if pe.StartLine == t.lastBad {
				t.done = true // no progress; never loop
				return false
			}
			t.lastBad = pe.StartLine
			t.row = pe.StartLine - t.extra
			t.errs = append(t.errs, newError(t.row, "", CodeBadCSV, "", csvReason(err)))
			// The reader resumes after the broken record; if the broken quote
			// ran to the end of the file the next Read reports EOF.
			continue
		}
		line, _ := t.cr.FieldPos(0)
		t.row = line - t.extra
		t.countExtra(rec)
		if blank(rec) {
			continue
		}
		if len(rec) != t.nfields {
			t.errs = append(t.errs, newError(t.row, "", CodeWrongFieldCount, "", t.nfields, len(rec)))
			continue
		}
		t.rec = rec
		return true
	}
	return false
}

func blank(rec []string) bool {
	for _, f := range rec {
		if strings.TrimSpace(f) != "" {
			return false
		}
	}
	return true
}

func csvReason(err error) string {
	var pe *csv.ParseError
	if errors.As(err, &pe) {
		return pe.Err.Error()
	}
	return err.Error()
}

// fail records a problem in the current row.
func (t *table) fail(column, code, value string, args ...any) {
	t.errs = append(t.errs, newError(t.row, column, code, value, args...))
}

// raw returns the current row's untouched value of column name.
func (t *table) raw(name string) string {
	return t.rec[t.pos[name]]
}

// text returns the trimmed value of a text column after the checks every
// field gets: valid UTF-8, no formula prefix, no control characters, not
// longer than the schema allows, present if required. ok is false (and the
// problem recorded) when a check failed.
func (t *table) text(c column) (v string, ok bool) {
	raw := t.raw(c.name)
	v, code := cleanText(raw)
	if code == "" && isFormula(raw, v) {
		code = CodeFormulaInjection
	}
	return t.finishText(c, raw, v, code)
}

func (t *table) finishText(c column, raw, v, code string) (string, bool) {
	switch {
	case code != "":
		t.fail(c.name, code, raw)
		return "", false
	case v == "" && c.required:
		t.fail(c.name, CodeRequired, "")
		return "", false
	}
	if n := utf8.RuneCountInString(v); n > c.maxLen {
		t.fail(c.name, CodeFieldTooLong, v, c.maxLen, n)
		return "", false
	}
	return v, true
}

// cleanText trims raw and returns the code of its first encoding problem.
func cleanText(raw string) (string, string) {
	if !utf8.ValidString(raw) {
		return "", CodeInvalidUTF8
	}
	if raw != "" && (raw[0] == '\t' || raw[0] == '\r') {
		return "", CodeFormulaInjection
	}
	v := strings.TrimSpace(raw)
	for _, r := range v {
		if r < 0x20 || r == 0x7f || r == '\u2028' || r == '\u2029' {
			return "", CodeControlCharacter
		}
	}
	return v, ""
}

// isFormula reports whether a spreadsheet would run the value as a formula
// when the file is opened again: it starts with = + - or @, or with a tab or
// CR (checked on the raw value, before trimming).
func isFormula(raw, v string) bool {
	if raw != "" && (raw[0] == '\t' || raw[0] == '\r') {
		return true
	}
	return v != "" && strings.ContainsRune("=+-@", rune(v[0]))
}

// number reads an integer column. An empty value gives def when hasDef,
// else a "required" problem. A signed number such as "-5" is a number (so
// the range check can name it); any other value starting with a formula
// character is formula_injection; anything else non-numeric is bad_number.
// The value is clamped to ±1e9 so huge inputs fail the range checks.
func (t *table) number(c column, def int, hasDef bool) (int, bool) {
	raw := t.raw(c.name)
	v, code := cleanText(raw)
	if code != "" {
		t.fail(c.name, code, raw)
		return 0, false
	}
	if v == "" {
		if hasDef {
			return def, true
		}
		t.fail(c.name, CodeRequired, "")
		return 0, false
	}
	digits := strings.TrimLeft(v, "+-")
	if len(v)-len(digits) > 1 || digits == "" || !allDigits(digits) {
		if isFormula(raw, v) {
			t.fail(c.name, CodeFormulaInjection, raw)
		} else {
			t.fail(c.name, CodeBadNumber, raw)
		}
		return 0, false
	}
	n := 1_000_000_000
	if len(strings.TrimLeft(digits, "0")) <= 9 {
		n, _ = strconv.Atoi(digits)
	}
	if v[0] == '-' {
		n = -n
	}
	return n, true
}
