package proto

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
)

// checkKeys refuses object keys in raw that name a field of t only when
// case is ignored ("tYpe" for "type"), at every depth that t describes.
//
// encoding/json matches keys case-insensitively, so "tYpe" would be read
// as "type" here while a browser's JSON.parse, or any other strict
// reader, sees a different message: a parser differential, and a way to
// smuggle a second "type" past anything that looks at the raw bytes. Keys
// that match no field at all are ignored, not refused, so that a newer
// client adding an optional field still talks to an older tracker; the
// tracker re-encodes what it relays, so unknown fields never reach
// another peer.
//
// Types with their own UnmarshalJSON are not looked into.
func checkKeys(raw []byte, t reflect.Type) error {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return nil
	}
	switch t.Kind() {
	case reflect.Struct:
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(raw, &obj); err != nil || obj == nil {
			return nil // not an object (or null): the decoder has its say
		}
		fields := jsonFields(t)
		for k, v := range obj {
			if ft, ok := fields[k]; ok {
				if err := checkKeys(v, ft); err != nil {
					return fmt.Errorf("in %q: %w", k, err)
				}
				continue
			}
			for name := range fields {
				if strings.EqualFold(name, k) {
					return fmt.Errorf("field names are case-sensitive: %q must be spelled %q", clip(k), name)
				}
			}
		}
	case reflect.Slice, reflect.Array:
		var elems []json.RawMessage
		if err := json.Unmarshal(raw, &elems); err != nil {
			return nil
		}
		for i, e := range elems {
			if err := checkKeys(e, t.Elem()); err != nil {
				return fmt.Errorf("at [%d]: %w", i, err)
			}
		}
	}
	return nil
}

var unmarshalerType = reflect.TypeFor[json.Unmarshaler]()

// fieldCache maps a struct type to its JSON field names and their types.
var fieldCache sync.Map // reflect.Type → map[string]reflect.Type

func jsonFields(t reflect.Type) map[string]reflect.Type {
	if m, ok := fieldCache.Load(t); ok {
		return m.(map[string]reflect.Type)
	}
	m := make(map[string]reflect.Type)
	for _, f := range reflect.VisibleFields(t) {
		if !f.IsExported() || f.Anonymous {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		switch name {
		case "-":
			continue
		case "":
			name = f.Name
		}
		m[name] = f.Type
	}
	fieldCache.Store(t, m)
	return m
}
