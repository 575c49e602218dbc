package config

import (
	"slices"
	"strings"
	"testing"
)

const compatBase = `
listen: 127.0.0.1:8787
sources: [{name: a, url: "http://127.0.0.1/x", id: .id, state: .s, items: ".[]"}]
subscriptions:
  - {name: app, url: "http://127.0.0.1:3000/", secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
  - {name: tmpl, template: true, secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}
`

// compat: names a template subscription, one facade per vendor, and
// Gumlet's on an address of its own; no message quotes an api_key.
func TestCompat(t *testing.T) {
	c := mustParse(t, compatBase+`compat:
  - {vendor: dam, api_key: k-TOPSECRET, template: tmpl, projects: [p1]}
  - {vendor: gumlet, api_key: k2, template: tmpl, listen: "127.0.0.1:8788"}
`, noEnv)
	if len(c.Compat) != 2 || c.Compat[0].Projects[0] != "p1" || c.Compat[1].Listen != "127.0.0.1:8788" {
		t.Errorf("compat = %+v", c.Compat)
	}
	if !c.Subscriptions[1].Template || c.Subscriptions[1].URL != "" {
		t.Errorf("template = %+v", c.Subscriptions[1])
	}
	d := mustParse(t, compatBase+"compat: [{vendor: dam, api_key: other, template: tmpl}]\n", noEnv)
	if got := RestartKeys(c, d); !slices.Equal(got, []string{"compat"}) {
		t.Errorf("RestartKeys = %q", got)
	}
	cases := map[string][]string{
		"compat: [{vendor: stripe, api_key: k, template: tmpl}]": {"compat[0].vendor: must be one of dam, glossi, gumlet"},
		"compat: [{vendor: dam, template: tmpl}]":                {"compat[0].api_key: required: the key a client sends"},
		"compat: [{vendor: dam, api_key: k-TOPSECRET}]":          {"compat[0].template: required: a subscription with template: true"},
		"compat: [{vendor: dam, api_key: k, template: app}]":     {"compat[0].template: must name a subscription with template: true"},
		"compat: [{vendor: dam, api_key: k, template: nope}]":    {"compat[0].template: must name a subscription with template: true"},
		"compat: [{vendor: gumlet, api_key: k, template: tmpl}]": {"compat[0].listen: required for gumlet: its paths (/v1/org/…) are pollrelay's /v1"},
		"compat: [{vendor: glossi, api_key: k, template: tmpl, listen: '127.0.0.1:8787'}]": {
			"compat[0].listen: 127.0.0.1:8787 is taken by listen or another facade",
		},
		"compat: [{vendor: glossi, api_key: k, template: tmpl, listen: nowhere, projects: [p]}]": {
			"compat[0].listen: must be host:port, e.g. 127.0.0.1:8788",
			"compat[0].projects: only dam webhooks name a project",
		},
		"  - {name: dam-7, url: 'http://127.0.0.1:3000/', secret: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw'}\ncompat: [{vendor: dam, api_key: k, template: tmpl}]": {
			"subscriptions[2].name: dam-<number> names the dam facade's subscriptions; choose another",
		},
		"compat: [{vendor: dam, api_key: k, template: tmpl}, {vendor: dam, api_key: k, template: tmpl}]": {
			"compat[1].vendor: dam has a facade already",
		},
	}
	for tail, want := range cases {
		_, err := ParseWith([]byte(compatBase+tail), noEnv)
		if err == nil {
			t.Errorf("%s: no error", tail)
			continue
		}
		got := problemsOf(t, err)
		if !slices.Equal(got, want) {
			t.Errorf("%s:\n  %s\nwant:\n  %s", tail, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
		}
		if strings.Contains(err.Error(), "TOPSECRET") {
			t.Errorf("%s: the error quotes the api_key", tail)
		}
	}
}
