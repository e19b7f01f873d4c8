package catalog

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Error codes carried in RowError.Code. They are stable: the CLI, the admin
// API and docs/IMPORT.md show them to users, and clients may match on them.
const (
	// File and header problems.
	CodeEmptyFile       = "empty_file"
	CodeBadCSV          = "bad_csv"
	CodeMissingColumn   = "missing_column"
	CodeUnknownColumn   = "unknown_column"
	CodeDuplicateColumn = "duplicate_column"
	CodeBadHeader       = "bad_header"
	CodeWrongFieldCount = "wrong_field_count"

	// Problems any field can have.
	CodeRequired         = "required"
	CodeInvalidUTF8      = "invalid_utf8"
	CodeControlCharacter = "control_character"
	CodeFieldTooLong     = "field_too_long"
	CodeFormulaInjection = "formula_injection"
	CodeBadNumber        = "bad_number"

	// Catalog rows.
	CodeBadCode               = "bad_code"
	CodeBadSection            = "bad_section"
	CodeCreditsOutOfRange     = "credits_out_of_range"
	CodeCapacityNegative      = "capacity_negative"
	CodeCapacityTooLarge      = "capacity_too_large"
	CodeDuplicateSection      = "duplicate_section"
	CodeBadMeetingFormat      = "bad_meeting_format"
	CodeBadDay                = "bad_day"
	CodeBadTimeFormat         = "bad_time_format"
	CodeTimeOutOfRange        = "time_out_of_range"
	CodeEndBeforeStart        = "end_before_start"
	CodeMeetingsOverlap       = "meetings_overlap"
	CodeCapacityBelowEnrolled = "capacity_below_enrolled" // found by ImportCatalog against the database

	// Roster rows.
	CodeBadStudentNo         = "bad_student_no"
	CodeDuplicateStudent     = "duplicate_student"
	CodeYearOutOfRange       = "year_out_of_range"
	CodeMaxCreditsOutOfRange = "max_credits_out_of_range"
	CodeMissingPasswordHash  = "missing_password_hash" // ImportStudents called without an initial hash
)

// messages holds the Korean and English text of every code. Entries may hold
// fmt verbs; newError fills them from its args.
var messages = map[string]struct{ ko, en string }{
	CodeEmptyFile:       {"파일이 비어 있습니다(헤더 행이 없습니다)", "the file is empty (no header row)"},
	CodeBadCSV:          {"CSV 형식이 잘못되었습니다(따옴표 짝 등을 확인하세요): %s", "malformed CSV (check the quotes): %s"},
	CodeMissingColumn:   {"헤더에 이 열이 없습니다(값은 비워 둘 수 있는 열도 머리글에는 있어야 합니다)", "this column is missing from the header (every column must be named, even one whose values may be empty)"},
	CodeBadHeader:       {"첫 행이 이 파일의 머리글이 아닙니다. 첫 행은 다음과 같아야 합니다: %s", "the first row is not this file's header; it must be: %s"},
	CodeUnknownColumn:   {"알 수 없는 열입니다(허용되는 열: %s)", "unknown column (allowed columns: %s)"},
	CodeDuplicateColumn: {"헤더에 같은 열이 두 번 있습니다", "the column appears twice in the header"},
	CodeWrongFieldCount: {"열 개수가 헤더와 다릅니다(헤더 %d개, 이 행 %d개)", "wrong number of fields (header has %d, this row has %d)"},

	CodeRequired:         {"필수 값이 비어 있습니다", "a value is required"},
	CodeInvalidUTF8:      {"UTF-8이 아닌 문자가 있습니다(파일을 'CSV UTF-8' 형식으로 저장하세요)", "the value is not valid UTF-8 (save the file as 'CSV UTF-8')"},
	CodeControlCharacter: {"줄바꿈·탭 같은 제어 문자가 들어 있습니다", "the value contains a control character such as a line break or tab"},
	CodeFieldTooLong:     {"값이 너무 깁니다(최대 %d자, 현재 %d자)", "the value is too long (at most %d characters, got %d)"},
	CodeFormulaInjection: {"스프레드시트 수식으로 해석될 수 있는 문자(= + - @ 탭 CR)로 시작합니다", "the value starts with a character spreadsheets run as a formula (= + - @ tab CR)"},
	CodeBadNumber:        {"정수가 아닙니다", "not a whole number"},

	CodeBadCode:               {"과목코드는 영문 2–10자 뒤에 숫자 2–6자(끝에 영문 1자 허용) 형식이어야 합니다(예: CSE4051)", "the course code must be 2–10 letters followed by 2–6 digits and an optional letter (e.g. CSE4051)"},
	CodeBadSection:            {"분반은 영문 또는 숫자 1–10자여야 합니다(예: 01)", "the section must be 1–10 letters or digits (e.g. 01)"},
	CodeCreditsOutOfRange:     {"학점은 %d–%d 사이여야 합니다", "credits must be between %d and %d"},
	CodeCapacityNegative:      {"정원은 0 이상이어야 합니다", "capacity must not be negative"},
	CodeCapacityTooLarge:      {"정원은 최대 %d명입니다", "capacity must be at most %d"},
	CodeDuplicateSection:      {"같은 과목코드·분반이 %d행에 이미 있습니다", "the same code and section already appear on row %d"},
	CodeBadMeetingFormat:      {"수업시간은 'MON 09:00-10:15' 형식을 ';'로 구분해 적어야 합니다", "meetings must be 'MON 09:00-10:15' entries separated by ';'"},
	CodeBadDay:                {"요일은 MON TUE WED THU FRI SAT SUN 중 하나여야 합니다", "the day must be one of MON TUE WED THU FRI SAT SUN"},
	CodeBadTimeFormat:         {"시각은 HH:MM 형식이어야 합니다(예: 09:00)", "times must be written HH:MM (e.g. 09:00)"},
	CodeTimeOutOfRange:        {"시각은 00:00–24:00 사이여야 합니다", "times must be between 00:00 and 24:00"},
	CodeEndBeforeStart:        {"종료 시각이 시작 시각보다 늦어야 합니다", "the end time must be after the start time"},
	CodeMeetingsOverlap:       {"같은 분반의 수업시간이 서로 겹칩니다(%s / %s)", "two meetings of the section overlap (%s / %s)"},
	CodeCapacityBelowEnrolled: {"정원이 현재 신청 인원(%d명)보다 적습니다", "capacity is below the %d students already enrolled"},

	CodeBadStudentNo:         {"학번은 숫자 %d–%d자리여야 합니다", "the student number must be %d–%d digits"},
	CodeDuplicateStudent:     {"같은 학번이 %d행에 이미 있습니다", "the same student number already appears on row %d"},
	CodeYearOutOfRange:       {"학년은 %d–%d 사이여야 합니다", "the year must be between %d and %d"},
	CodeMaxCreditsOutOfRange: {"최대 신청 학점은 %d–%d 사이여야 합니다", "max credits must be between %d and %d"},
	CodeMissingPasswordHash:  {"초기 비밀번호 해시가 없습니다", "no initial password hash was given"},
}

// RowError is one problem found in an import file. Row counts like a
// spreadsheet: the header is row 1 and the first data row is row 2. Row 0
// means the value did not come from a file (e.g. a Section built in code).
type RowError struct {
	Row       int    `json:"row"`
	Column    string `json:"column,omitempty"`
	Code      string `json:"code"`
	Message   string `json:"message"`    // Korean
	MessageEN string `json:"message_en"` // English
	Value     string `json:"value,omitempty"`
}

// newError builds a RowError for code with its messages filled from args.
func newError(row int, column, code, value string, args ...any) RowError {
	m, ok := messages[code]
	if !ok {
		panic("catalog: no messages for error code " + code)
	}
	ko, en := m.ko, m.en
	if len(args) > 0 {
		ko, en = fmt.Sprintf(ko, args...), fmt.Sprintf(en, args...)
	}
	return RowError{Row: row, Column: column, Code: code, Message: ko, MessageEN: en, Value: shorten(value)}
}

// shorten keeps error values readable: valid UTF-8, at most 80 characters.
func shorten(v string) string {
	v = strings.ToValidUTF8(v, "\uFFFD")
	if utf8.RuneCountInString(v) <= 80 {
		return v
	}
	r := []rune(v)
	return string(r[:80]) + "…"
}

// Error formats the problem as
// `row N, column C: [code] 한국어 메시지 / English message (value "v")`.
func (e RowError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "row %d", e.Row)
	if e.Column != "" {
		fmt.Fprintf(&b, ", column %s", e.Column)
	}
	fmt.Fprintf(&b, ": [%s] %s / %s", e.Code, e.Message, e.MessageEN)
	if e.Value != "" {
		fmt.Fprintf(&b, " (value %q)", e.Value)
	}
	return b.String()
}

// Errors is every problem found in one import; an import with any of them
// changes nothing. Its text has one line per problem.
type Errors []RowError

// Error lists every problem, one per line.
func (es Errors) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d invalid value(s):", len(es))
	for _, e := range es {
		b.WriteString("\n")
		b.WriteString(e.Error())
	}
	return b.String()
}

// Rows returns the distinct row numbers that have problems, in order of
// first appearance.
func (es Errors) Rows() []int {
	seen := map[int]bool{}
	var rows []int
	for _, e := range es {
		if !seen[e.Row] {
			seen[e.Row] = true
			rows = append(rows, e.Row)
		}
	}
	return rows
}
