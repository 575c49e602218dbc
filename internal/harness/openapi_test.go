package harness

import (
	"strings"
	"testing"
)

// TestOpenAPIChecker: the checker the API tests rely on catches what it
// is there for.
func TestOpenAPIChecker(t *testing.T) {
	good := `{"data":[{"source":"s","id":"a","created_at":"2026-01-15T10:30:00Z","origin":"api"}]}`
	if errs := CheckAgainstOpenAPI("GET", "/v1/watches?source=s", 200, []byte(good)); len(errs) != 0 {
		t.Errorf("a valid answer was refused: %v", errs)
	}
	for body, want := range map[string]string{
		`{"data":[{"source":"s","id":"a","validators_for":"x"}]}`: `property "validators_for" is not in the schema`,
		`{"data":[{"source":"s","id":1}]}`:                        "body.data[0].id: is integer, want string",
		`{"data":[{"source":"s","created_at":"yesterday"}]}`:      "is not a date-time",
		`{"items":[]}`:                      `lacks required property "data"`,
		`{"data":[{"origin":"elsewhere"}]}`: "is not one of",
	} {
		errs := CheckAgainstOpenAPI("GET", "/v1/watches", 200, []byte(body))
		if !strings.Contains(strings.Join(errs, "\n"), want) {
			t.Errorf("%s: errors %v, want one with %q", body, errs, want)
		}
	}
	if errs := CheckAgainstOpenAPI("GET", "/v1/watches", 299, []byte(`{}`)); len(errs) == 0 {
		t.Error("an undocumented status passed")
	}
	if errs := CheckAgainstOpenAPI("GET", "/v1/nowhere", 404, []byte(`{"error":"no such route"}`)); len(errs) != 0 {
		t.Errorf("an error answer from an unknown route: %v", errs)
	}
}
