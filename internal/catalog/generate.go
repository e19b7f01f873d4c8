package catalog

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
)

// The generator reuses the departments, titles, buildings, names and time
// slots of testdata/fixtures/catalog.csv so generated catalogs look like the
// fixture, only bigger.
type genDept struct {
	prefix, name string
	titles       [][2]string // Korean, English
}

var genDepts = []genDept{
	{"BUS", "경영학과", [][2]string{{"경영학원론", "Principles of Management"}, {"회계원리", "Principles of Accounting"}, {"마케팅관리", "Marketing Management"}, {"재무관리", "Financial Management"}, {"조직행동론", "Organizational Behavior"}, {"경영정보시스템", "Management Information Systems"}, {"생산운영관리", "Operations Management"}, {"투자론", "Investments"}}},
	{"CSE", "컴퓨터공학과", [][2]string{{"객체지향프로그래밍", "Object-Oriented Programming"}, {"기계학습", "Machine Learning"}, {"데이터베이스", "Database Systems"}, {"분산시스템", "Distributed Systems"}, {"소프트웨어공학", "Software Engineering"}, {"알고리즘", "Algorithms"}, {"운영체제", "Operating Systems"}, {"웹프로그래밍", "Web Programming"}, {"이산수학", "Discrete Mathematics"}, {"인공지능", "Artificial Intelligence"}, {"자료구조", "Data Structures"}, {"정보보호", "Information Security"}, {"컴파일러", "Compilers"}, {"컴퓨터구조", "Computer Architecture"}, {"컴퓨터네트워크", "Computer Networks"}}},
	{"ECO", "경제학과", [][2]string{{"거시경제학", "Macroeconomics"}, {"계량경제학", "Econometrics"}, {"국제경제학", "International Economics"}, {"미시경제학", "Microeconomics"}, {"행동경제학", "Behavioral Economics"}, {"화폐금융론", "Money and Banking"}}},
	{"EE", "전자공학과", [][2]string{{"디지털논리회로", "Digital Logic Circuits"}, {"반도체공학", "Semiconductor Engineering"}, {"신호및시스템", "Signals and Systems"}, {"임베디드시스템", "Embedded Systems"}, {"전자기학", "Electromagnetics"}, {"제어공학", "Control Engineering"}, {"통신이론", "Communication Theory"}, {"회로이론", "Circuit Theory"}}},
	{"ENG", "영어영문학과", [][2]string{{"셰익스피어", "Shakespeare"}, {"영미문학개론", "Introduction to English Literature"}, {"영어음성학", "English Phonetics"}, {"영어학개론", "Introduction to English Linguistics"}, {"영작문", "English Composition"}}},
	{"GEN", "교양학부", [][2]string{{"글로벌영어", "Global English"}, {"대학글쓰기", "College Writing"}, {"데이터리터러시", "Data Literacy"}, {"생활속의통계", "Statistics in Daily Life"}, {"세계문화의이해", "Understanding World Cultures"}, {"창의적사고", "Creative Thinking"}, {"철학의이해", "Understanding Philosophy"}, {"한국사", "Korean History"}, {"현대사회와윤리", "Ethics in Modern Society"}}},
	{"KOR", "국어국문학과", [][2]string{{"고전시가론", "Classical Korean Poetry"}, {"국어문법론", "Korean Grammar"}, {"국어학개론", "Introduction to Korean Linguistics"}, {"한국문학사", "History of Korean Literature"}, {"현대소설론", "Modern Korean Fiction"}}},
	{"MAT", "수학과", [][2]string{{"미분방정식", "Differential Equations"}, {"미적분학", "Calculus"}, {"선형대수학", "Linear Algebra"}, {"수치해석", "Numerical Analysis"}, {"위상수학", "Topology"}, {"해석학", "Real Analysis"}, {"현대대수학", "Abstract Algebra"}, {"확률론", "Probability Theory"}}},
	{"ME", "기계공학과", [][2]string{{"기계설계", "Machine Design"}, {"동역학", "Dynamics"}, {"열역학", "Thermodynamics"}, {"유체역학", "Fluid Mechanics"}, {"재료역학", "Mechanics of Materials"}, {"정역학", "Statics"}}},
	{"PSY", "심리학과", [][2]string{{"발달심리학", "Developmental Psychology"}, {"사회심리학", "Social Psychology"}, {"심리통계", "Statistics for Psychology"}, {"심리학개론", "Introduction to Psychology"}, {"이상심리학", "Abnormal Psychology"}, {"인지심리학", "Cognitive Psychology"}}},
}

var (
	genSurnames   = []string{"강", "권", "김", "류", "박", "서", "송", "신", "안", "오", "윤", "이", "임", "장", "정", "조", "최", "한"}
	genGiven      = []string{"건우", "도윤", "민수", "서연", "서윤", "수아", "승현", "시우", "예준", "유진", "은서", "주원", "지민", "지우", "지훈", "채원", "태민", "하린", "하은", "현우"}
	genBuildings  = []string{"경상관", "공학관", "미래관", "인문관", "자연과학관", "학생회관"}
	genDayPairs   = [][2]Day{{Mon, Wed}, {Tue, Thu}, {Mon, Thu}, {Tue, Fri}, {Wed, Fri}}
	genShortSlots = []int{9 * 60, 10*60 + 30, 12 * 60, 13*60 + 30, 15 * 60, 16*60 + 30, 18 * 60} // 75-minute classes
	genLongSlots  = []int{9 * 60, 13 * 60, 14 * 60, 18 * 60}                                     // 170-minute blocks
	genCredits    = []int{3, 3, 3, 3, 3, 3, 2, 2, 1, 4}
	genCapacities = []int{20, 30, 30, 40, 40, 40, 50, 50, 60, 60, 80, 120, 200}
)

// MaxGenerated is the most sections GenerateCatalog writes: course numbers
// run out of digits after 1000 variants of every title.
const MaxGenerated = 1_000_000

// GenerateCatalog writes a valid catalog CSV of n sections to w. The output
// depends only on n and seed, so benchmarks and tests can regenerate it.
// Codes follow the fixture's scheme (prefix, level, title number, variant);
// each course gets 1–8 sections, and (code, section) is unique. n may be
// up to MaxGenerated.
func GenerateCatalog(w io.Writer, n int, seed uint64) error {
	if n < 0 || n > MaxGenerated {
		return fmt.Errorf("generate catalog: %d sections: want 0..%d", n, MaxGenerated)
	}
	rng := rand.New(rand.NewPCG(seed, 0x656e726f6c6c71))
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	if err := cw.Write(CatalogHeader()); err != nil {
		return fmt.Errorf("generate catalog: %w", err)
	}
	written := 0
	for variant := 0; written < n; variant++ {
		if variant > 999 {
			return fmt.Errorf("generate catalog: ran out of course numbers after %d sections", written)
		}
		for _, d := range genDepts {
			for level := 1; level <= 4 && written < n; level++ {
				for ti, title := range d.titles {
					if written >= n {
						break
					}
					// Level, title number, variant: 4 digits up to variant 9,
					// then 5 and 6; numbers of different lengths never collide.
					code := fmt.Sprintf("%s%d%02d%d", d.prefix, level, ti, variant)
					credits := genCredits[rng.IntN(len(genCredits))]
					category := "전공선택"
					switch {
					case d.prefix == "GEN":
						category = "교양"
					case rng.IntN(3) == 0:
						category = "전공필수"
					}
					nsec := 1 + rng.IntN(8)
					for sec := 1; sec <= nsec && written < n; sec++ {
						rec := []string{
							code,
							fmt.Sprintf("%02d", sec),
							title[0],
							title[1],
							d.name,
							genSurnames[rng.IntN(len(genSurnames))] + genGiven[rng.IntN(len(genGiven))],
							strconv.Itoa(credits),
							strconv.Itoa(genCapacities[rng.IntN(len(genCapacities))]),
							FormatMeetings(genMeetings(rng)),
							fmt.Sprintf("%s %d%02d", genBuildings[rng.IntN(len(genBuildings))], 1+rng.IntN(6), 1+rng.IntN(30)),
							category,
						}
						if err := cw.Write(rec); err != nil {
							return fmt.Errorf("generate catalog: %w", err)
						}
						written++
					}
				}
			}
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("generate catalog: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("generate catalog: %w", err)
	}
	return nil
}

// genMeetings picks the fixture's patterns: mostly two 75-minute classes on
// a day pair, sometimes one 170-minute block.
func genMeetings(rng *rand.Rand) []Meeting {
	if rng.IntN(5) == 0 {
		start := genLongSlots[rng.IntN(len(genLongSlots))]
		return []Meeting{{Day: Day(rng.IntN(5)), Start: start, End: start + 170}}
	}
	pair := genDayPairs[rng.IntN(len(genDayPairs))]
	start := genShortSlots[rng.IntN(len(genShortSlots))]
	return []Meeting{{Day: pair[0], Start: start, End: start + 75}, {Day: pair[1], Start: start, End: start + 75}}
}

// GenerateRoster writes a valid roster CSV of n students to w, deterministic
// in n and seed. Student numbers are the entrance year followed by a
// zero-padded sequence number, unique across the file.
func GenerateRoster(w io.Writer, n int, seed uint64) error {
	rng := rand.New(rand.NewPCG(seed, 0x73747564656e74))
	bw := bufio.NewWriter(w)
	cw := csv.NewWriter(bw)
	if err := cw.Write(RosterHeader()); err != nil {
		return fmt.Errorf("generate roster: %w", err)
	}
	width := max(5, len(strconv.Itoa(n-1)))
	maxCredits := []int{18, 18, 18, 18, 18, 18, 19, 19, 21, 21}
	for i := 0; i < n; i++ {
		year := 1 + rng.IntN(4)
		d := genDepts[rng.IntN(len(genDepts))]
		rec := []string{
			fmt.Sprintf("%d%0*d", 2026-year, width, i),
			genSurnames[rng.IntN(len(genSurnames))] + genGiven[rng.IntN(len(genGiven))],
			strconv.Itoa(year),
			d.name,
			strconv.Itoa(maxCredits[rng.IntN(len(maxCredits))]),
		}
		if err := cw.Write(rec); err != nil {
			return fmt.Errorf("generate roster: %w", err)
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		return fmt.Errorf("generate roster: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("generate roster: %w", err)
	}
	return nil
}
