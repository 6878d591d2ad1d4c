package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
)

// verdict is what the JSON filters decide for a message.
type verdict int

const (
	pass    verdict = iota
	drop            // finish without publishing
	backoff         // requeue with backoff: the required field is missing
)

var errMissingField = errors.New("message lacks --require-json-field, needed to check --require-json-value")

// filter implements --require-json-field, --require-json-value and
// --whitelist-json-field. With none set, every message passes unchanged
// and need not be JSON.
type filter struct {
	field     string
	value     string
	isNumber  bool // value parses as a number, and may match a JSON number
	number    float64
	whitelist []string
}

func newFilter(field, value string, whitelist []string) *filter {
	f := &filter{field: field, value: value, whitelist: whitelist}
	if n, err := strconv.ParseFloat(value, 64); err == nil {
		f.isNumber, f.number = true, n
	}
	return f
}

// apply returns the body to publish and the verdict. Messages that are not
// JSON objects are dropped once any filter is set.
func (f *filter) apply(body []byte) ([]byte, verdict) {
	if f.field == "" && len(f.whitelist) == 0 {
		return body, pass
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(body, &obj); err != nil || obj == nil {
		return nil, drop
	}
	if f.field != "" {
		raw, ok := obj[f.field]
		switch {
		case !ok && f.value != "":
			return nil, backoff
		case !ok:
			return nil, drop
		case f.value != "" && !f.matches(raw):
			return nil, drop
		}
	}
	if len(f.whitelist) == 0 {
		return body, pass
	}
	out := make(map[string]json.RawMessage, len(f.whitelist))
	for _, k := range f.whitelist {
		if v, ok := obj[k]; ok {
			out[k] = v
		}
	}
	b, err := json.Marshal(out)
	if err != nil {
		return nil, drop // cannot happen: the values were valid JSON
	}
	return b, pass
}

// matches reports whether a JSON value equals --require-json-value: a
// string equal to it, or a number equal to it when it is a number.
func (f *filter) matches(raw json.RawMessage) bool {
	raw = bytes.TrimSpace(raw)
	if len(raw) > 0 && raw[0] == '"' {
		var s string
		return json.Unmarshal(raw, &s) == nil && s == f.value
	}
	if !f.isNumber {
		return false
	}
	var n float64
	return json.Unmarshal(raw, &n) == nil && n == f.number
}
