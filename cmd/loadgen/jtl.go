package main

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

// jtlSummary is what `loadgen -check-jtl FILE` reports about a JMeter result
// file (CSV, as scripts/jmeter.sh writes it): samples and failures by label,
// and the first failure messages. scripts/jmeter.sh and the JMeter smoke in
// `make test` fail on any failed sample.
type jtlSummary struct {
	Samples  int
	Failures int
	ByLabel  map[string]*jtlLabel
	Messages []string // first failures: "label: code message"
	Elapsed  []float64
}

type jtlLabel struct {
	Samples, Failures int
	Codes             map[string]int
}

// readJTL summarises a CSV JTL with a header row.
func readJTL(r io.Reader) (jtlSummary, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	head, err := cr.Read()
	if err != nil {
		return jtlSummary{}, fmt.Errorf("jtl: header: %w", err)
	}
	col := map[string]int{}
	for i, h := range head {
		col[h] = i
	}
	for _, need := range []string{"label", "success", "responseCode"} {
		if _, ok := col[need]; !ok {
			return jtlSummary{}, fmt.Errorf("jtl: no %q column in the header %q (write the JTL as CSV with a header)", need, head)
		}
	}
	get := func(rec []string, name string) string {
		if i, ok := col[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	s := jtlSummary{ByLabel: map[string]*jtlLabel{}}
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			return s, nil
		}
		if err != nil {
			return s, fmt.Errorf("jtl: %w", err)
		}
		label := get(rec, "label")
		l := s.ByLabel[label]
		if l == nil {
			l = &jtlLabel{Codes: map[string]int{}}
			s.ByLabel[label] = l
		}
		s.Samples++
		l.Samples++
		code := get(rec, "responseCode")
		l.Codes[code]++
		if ms, err := strconv.ParseFloat(get(rec, "elapsed"), 64); err == nil {
			s.Elapsed = append(s.Elapsed, ms)
		}
		if get(rec, "success") != "true" {
			s.Failures++
			l.Failures++
			if len(s.Messages) < 10 {
				msg := strings.TrimSpace(get(rec, "failureMessage"))
				if msg == "" {
					msg = get(rec, "responseMessage")
				}
				s.Messages = append(s.Messages, fmt.Sprintf("%s: %s %s", label, code, msg))
			}
		}
	}
}

// errSamplesFailed marks a JTL with failed samples (exit status 1).
var errSamplesFailed = errors.New("JMeter samples failed")

// checkJTL prints the summary of file and returns an error when it holds no
// sample or any failed one.
func checkJTL(file string, w io.Writer) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	s, err := readJTL(f)
	if err != nil {
		return err
	}
	p := summarize(s.Elapsed)
	fmt.Fprintf(w, "%s: %d samples, %d failed; elapsed p50/p95/p99 %g/%g/%g ms\n", file, s.Samples, s.Failures, p.P50, p.P95, p.P99)
	labels := make([]string, 0, len(s.ByLabel))
	for l := range s.ByLabel {
		labels = append(labels, l)
	}
	slices.Sort(labels)
	for _, name := range labels {
		l := s.ByLabel[name]
		var codes []string
		for _, c := range sortedKeys(l.Codes) {
			codes = append(codes, fmt.Sprintf("%s×%d", c, l.Codes[c]))
		}
		fmt.Fprintf(w, "  %-40s %6d samples %5d failed   %s\n", name, l.Samples, l.Failures, strings.Join(codes, " "))
	}
	for _, m := range s.Messages {
		fmt.Fprintf(w, "  FAILED %s\n", m)
	}
	switch {
	case s.Samples == 0:
		return fmt.Errorf("%s: no sample: %w", file, errSamplesFailed)
	case s.Failures > 0:
		return fmt.Errorf("%s: %d of %d samples failed: %w", file, s.Failures, s.Samples, errSamplesFailed)
	}
	return nil
}
