package loadtest

import (
	"fmt"
	"reflect"
	"sort"
	"strconv"
	"strings"
)

// Condition is one --fail-if test on a measure of the Result, named as in
// its JSON (DESIGN.md's names): e.g. continuity<0.99.
type Condition struct {
	Measure string
	Op      string
	Value   float64
}

func (c Condition) String() string {
	return c.Measure + c.Op + strconv.FormatFloat(c.Value, 'g', -1, 64)
}

var ops = []string{"<=", ">=", "==", "!=", "<", ">"} // two-character first

// ParseConditions reads a comma-separated list such as
// "continuity<0.99,origin_egress_copies>3". Unknown measures and
// malformed tests are errors that list what is allowed.
func ParseConditions(s string) ([]Condition, error) {
	var out []Condition
	known := measures(&Result{})
	for _, part := range strings.Split(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		var c Condition
		for _, op := range ops {
			if i := strings.Index(part, op); i > 0 {
				c.Measure, c.Op = strings.TrimSpace(part[:i]), op
				v, err := strconv.ParseFloat(strings.TrimSpace(part[i+len(op):]), 64)
				if err != nil {
					return nil, fmt.Errorf("--fail-if %q: the value must be a number", part)
				}
				c.Value = v
				break
			}
		}
		if c.Op == "" {
			return nil, fmt.Errorf("--fail-if %q: want MEASURE OP NUMBER with OP one of < <= > >= == !=", part)
		}
		if _, ok := known[c.Measure]; !ok {
			names := make([]string, 0, len(known))
			for n := range known {
				names = append(names, n)
			}
			sort.Strings(names)
			return nil, fmt.Errorf("--fail-if %q: no measure %q; measures: %s", part, c.Measure, strings.Join(names, ", "))
		}
		out = append(out, c)
	}
	return out, nil
}

// Failed returns, for each condition that holds on res, a line saying so.
func Failed(res *Result, conds []Condition) []string {
	m := measures(res)
	var out []string
	for _, c := range conds {
		v := m[c.Measure]
		hit := false
		switch c.Op {
		case "<":
			hit = v < c.Value
		case "<=":
			hit = v <= c.Value
		case ">":
			hit = v > c.Value
		case ">=":
			hit = v >= c.Value
		case "==":
			hit = v == c.Value
		case "!=":
			hit = v != c.Value
		}
		if hit {
			out = append(out, fmt.Sprintf("%s (%s = %s)", c, c.Measure, strconv.FormatFloat(v, 'g', 6, 64)))
		}
	}
	return out
}

// measures maps the JSON names of res's numeric fields to their values.
func measures(res *Result) map[string]float64 {
	out := map[string]float64{}
	v := reflect.ValueOf(res).Elem()
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		f := v.Field(i)
		switch f.Kind() {
		case reflect.Float64, reflect.Float32:
			out[name] = f.Float()
		case reflect.Int, reflect.Int64, reflect.Int32:
			out[name] = float64(f.Int())
		case reflect.Uint, reflect.Uint64, reflect.Uint32:
			out[name] = float64(f.Uint())
		}
	}
	return out
}
