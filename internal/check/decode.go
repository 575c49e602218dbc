package check

import (
	"errors"

	"github.com/go-viper/mapstructure/v2"
	"github.com/knadh/koanf/providers/confmap"
	"github.com/knadh/koanf/v2"
)

// keyDelim is koanf's key-path delimiter; it must never occur in a key
// (header names such as `X-Api.Key` contain dots).
const keyDelim = "\x00"

// Decode unmarshals a tree that Tree has checked onto dst with koanf,
// reporting what the decoder still refuses to p. Only the keys present
// are written, so dst's defaults stay for the rest. Passing our own
// DecoderConfig makes koanf drop its default hooks, so the duration and
// string-to-slice hooks are added back here.
func Decode(p *Problems, tree map[string]any, dst any) {
	k := koanf.NewWithConf(koanf.Conf{Delim: keyDelim})
	err := k.Load(confmap.Provider(tree, ""), nil)
	if err == nil {
		err = k.UnmarshalWithConf("", dst, koanf.UnmarshalConf{
			Tag: "koanf",
			DecoderConfig: &mapstructure.DecoderConfig{
				DecodeHook: mapstructure.ComposeDecodeHookFunc(
					durationHook,
					mapstructure.StringToSliceHookFunc(","),
				),
				WeaklyTypedInput: true,
			},
		})
	}
	if err != nil {
		addDecodeErrors(err, p)
	}
}

// addDecodeErrors turns decoder errors into problems. Tree should have
// caught every type error first; this keeps any it missed readable.
func addDecodeErrors(err error, p *Problems) {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			addDecodeErrors(e, p)
		}
		return
	}
	var de *mapstructure.DecodeError
	if errors.As(err, &de) {
		inner := de.Unwrap()
		var nested *mapstructure.DecodeError
		if _, ok := inner.(interface{ Unwrap() []error }); ok || errors.As(inner, &nested) {
			addDecodeErrors(inner, p)
			return
		}
		p.Bad(de.Name(), "%v", inner)
		return
	}
	p.Add("config", "%v", err)
}
