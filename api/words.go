package api

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"time"
)

// timeExample is what an error asks for when a time is wanted.
const timeExample = "an RFC 3339 time such as 2026-01-15T10:30:00Z"

// jsonError turns encoding/json's messages into one line a user can act
// on, naming what is wanted in JSON's words rather than Go's types.
func jsonError(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if te.Field == "" {
			return "must be " + typeWords(te.Type)
		}
		return te.Field + ": must be " + typeWords(te.Type)
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "not valid JSON: " + strings.TrimPrefix(se.Error(), "json: ")
	}
	return strings.TrimPrefix(err.Error(), "json: ")
}

var timeType = reflect.TypeFor[time.Time]()

// typeWords names the JSON value a Go type is decoded from.
func typeWords(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch {
	case t == timeType:
		return timeExample
	case t.Kind() == reflect.Map, t.Kind() == reflect.Struct:
		return "an object"
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Uint8:
		return "a base64 string"
	case t.Kind() == reflect.Slice, t.Kind() == reflect.Array:
		if e := t.Elem(); e.Kind() == reflect.String {
			return "a list of strings"
		}
		return "a list"
	case t.Kind() == reflect.String:
		return "a string"
	case t.Kind() == reflect.Bool:
		return "true or false"
	case t.Kind() >= reflect.Int && t.Kind() <= reflect.Uint64:
		return "a whole number"
	case t.Kind() == reflect.Float32, t.Kind() == reflect.Float64:
		return "a number"
	}
	return "a JSON value"
}
