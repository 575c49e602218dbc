package badger

import (
	"fmt"
)

// maxKey bounds a whole key: a few parts, each at most MaxKeyPart and at
// most doubled by escaping, well inside Badger's limit.
const maxKey = 8 * MaxKeyPart

// badgerMaxKey is Badger's own limit on a key.
const badgerMaxKey = 65000

// checkKV refuses a key or value Badger would refuse, as a bad record.
func checkKV(key, val []byte) error {
	if len(key) > maxKey {
		return bad(fmt.Errorf("key of %d bytes is over the %d-byte limit", len(key), maxKey))
	}
	if len(val) > maxValue {
		return bad(fmt.Errorf("value of %d bytes is over the %d-byte limit", len(val), maxValue))
	}
	return nil
}

// cutPart decodes the part at the start of b, returning it and the rest.
func cutPart(b []byte) (part string, rest []byte, ok bool) {
	out := make([]byte, 0, len(b))
	for i := 0; i < len(b); i++ {
		if b[i] != 0 {
			out = append(out, b[i])
			continue
		}
		if i+1 >= len(b) {
			return "", nil, false
		}
		switch b[i+1] {
		case 0xff:
			out = append(out, 0)
			i++
		case 1:
			return string(out), b[i+2:], true
		default:
			return "", nil, false
		}
	}
	return "", nil, false
}
