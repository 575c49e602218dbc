package signature_test

import (
	"fmt"
	"net/http"
	"time"

	"github.com/pollrelay/pollrelay/signature"
)

// A sender signs with a Signer; a Go receiver checks with a Verifier built
// from the same secret (or, for v1a, from the whpk_ public key).
func Example() {
	secret := signature.NewSecret()
	signer, err := signature.NewSigner(signature.Scheme{Name: signature.SchemeStandard}, []string{secret})
	if err != nil {
		panic(err)
	}
	body := []byte(`{"type":"video.status.ready"}`)
	h := http.Header{}
	signer.Sign(h, "evt_1", time.Now(), body)

	v, err := signature.NewVerifier(secret)
	if err != nil {
		panic(err)
	}
	fmt.Println(v.Verify(body, h))
	fmt.Println(v.Verify([]byte(`{"type":"forged"}`), h))
	// Output:
	// <nil>
	// signature: no matching signature
}
