// Package jsgen generates JSON documents in the shapes upstreams and Go's
// encoder produce, and runs them through the real node, so tests can hold
// pollrelay's bodies to what JavaScript's JSON.stringify writes.
package jsgen

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/pollrelay/pollrelay/internal/testenv"
)

// NeedNode stops t when node is missing (testenv.Missing: a skip outside
// CI, a failure in it).
func NeedNode(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("node"); err != nil {
		testenv.Missing(t, "node not installed")
	}
}

// Docs returns n generated documents from a fixed seed.
func Docs(seed uint64, n int) [][]byte {
	r := rand.New(rand.NewPCG(seed, 2))
	docs := make([][]byte, n)
	for i := range docs {
		var b strings.Builder
		genJSON(r, &b, 0)
		docs[i] = []byte(b.String())
	}
	return docs
}

// Stringify returns JSON.stringify(JSON.parse(doc)) for each doc, computed
// by node.
func Stringify(t testing.TB, docs [][]byte) [][]byte {
	t.Helper()
	var in bytes.Buffer
	for _, d := range docs {
		in.WriteString(base64.StdEncoding.EncodeToString(d) + "\n")
	}
	cmd := exec.Command("node", script())
	cmd.Stdin = &in
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, stderr.Bytes())
	}
	var res [][]byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "!") {
			t.Fatalf("node refused document %d: %s", len(res), line)
		}
		b, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			t.Fatal(err)
		}
		res = append(res, b)
	}
	if len(res) != len(docs) {
		t.Fatalf("node answered %d of %d documents", len(res), len(docs))
	}
	return res
}

// genJSON writes a random JSON document in the forms upstreams and Go's
// encoder produce: integer-like and repeated keys, escapes of every kind,
// lone surrogates, numbers in every layout (but no integer beyond 2^53,
// the documented exception), and random white space.
func genJSON(r *rand.Rand, b *strings.Builder, depth int) {
	space := func() {
		if r.IntN(4) == 0 {
			b.WriteString([]string{" ", "\n", "\t ", "\r\n"}[r.IntN(4)])
		}
	}
	space()
	n := r.IntN(10)
	if depth > 3 {
		n = 6 + r.IntN(4)
	}
	switch {
	case n < 2:
		b.WriteByte('{')
		keys := r.IntN(6)
		for i := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			space()
			genKey(r, b)
			space()
			b.WriteByte(':')
			genJSON(r, b, depth+1)
		}
		space()
		b.WriteByte('}')
	case n < 4:
		b.WriteByte('[')
		for i := range r.IntN(5) {
			if i > 0 {
				b.WriteByte(',')
			}
			genJSON(r, b, depth+1)
		}
		b.WriteByte(']')
	case n < 7:
		genString(r, b)
	case n < 9:
		genNumber(r, b)
	default:
		b.WriteString([]string{"true", "false", "null"}[r.IntN(3)])
	}
	space()
}

var keyPool = []string{"0", "1", "2", "10", "9", "007", "-1", "1.5", "4294967294", "4294967295", "99999999999", "a", "b", "id", "é", "\u2028", "<&>", "", " ", "__proto__x"}

func genKey(r *rand.Rand, b *strings.Builder) {
	if r.IntN(3) > 0 {
		k, _ := json.Marshal(keyPool[r.IntN(len(keyPool))])
		b.Write(k)
		return
	}
	genString(r, b)
}

func genString(r *rand.Rand, b *strings.Builder) {
	b.WriteByte('"')
	for range r.IntN(8) {
		switch r.IntN(12) {
		case 0:
			fmt.Fprintf(b, `\u%04x`, r.IntN(0x20))
		case 1:
			b.WriteString([]string{`\n`, `\t`, `\"`, `\\`, `\/`, `\b`, `\f`, `\r`}[r.IntN(8)])
		case 2:
			b.WriteString([]string{"\u2028", "\u2029", `\u2028`, "<", ">", "&", `\u003c`, `\u0026`}[r.IntN(8)])
		case 3:
			b.WriteString([]string{`\ud800`, `\udfff`, `\ud83d\ude00`, "😀", `\ud83d`, `\ude00\ud83d`}[r.IntN(6)])
		case 4:
			fmt.Fprintf(b, `\u%04X`, 0x20+r.IntN(0xd7ff-0x20))
		case 5:
			b.WriteString([]string{"ü", "中文", "\u007f", "\u0080", "\ufeff", "\uffff"}[r.IntN(6)])
		default:
			b.WriteByte(byte('a' + r.IntN(26)))
		}
	}
	b.WriteByte('"')
}

func genNumber(r *rand.Rand, b *strings.Builder) {
	switch r.IntN(6) {
	case 0:
		fmt.Fprintf(b, "%d", r.Int64N(1<<53)-(1<<52))
	case 1:
		b.WriteString([]string{"0", "-0", "0.0", "-0.0", "1.0", "1e2", "1E+2", "1e-7", "1e21", "1e-6", "100e-2", "0.1", "5e-324", "1e308"}[r.IntN(14)])
	case 2:
		for {
			f := math.Float64frombits(r.Uint64())
			if !math.IsNaN(f) && !math.IsInf(f, 0) {
				b.WriteString(fmt.Sprintf("%v", f))
				return
			}
		}
	case 3:
		fmt.Fprintf(b, "%.*e", r.IntN(20), (r.Float64()-0.5)*math.Pow(10, float64(r.IntN(60)-30)))
	case 4:
		fmt.Fprintf(b, "%.*f", r.IntN(12), (r.Float64()-0.5)*math.Pow(10, float64(r.IntN(16))))
	default:
		fmt.Fprintf(b, "%d.%de%d", r.IntN(1000), r.IntN(1000), r.IntN(50)-25)
	}
}

// script is the node program beside this file.
func script() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "jsroundtrip.mjs")
}
