package main

// Behaviour rules: how long tasks look running, which calls fail or hang, and
// per-method delays. They start from the command-line flags and can be
// replaced at run time through /_nestlab/config (see control.go).

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// matchRule selects SOAP calls: Method ("*" for any method) whose raw request
// body contains Substring (empty: every call to Method).
type matchRule struct {
	Method    string
	Substring string
}

func parseMatchRule(text string) (matchRule, error) {
	text = strings.TrimSpace(text)
	method, substring, _ := strings.Cut(text, ":")
	method = strings.TrimSpace(method)
	if method == "" {
		return matchRule{}, fmt.Errorf("rule %q: want Method[:substring]", text)
	}
	if !validMethodName(method) {
		return matchRule{}, fmt.Errorf("rule %q: %q is not a SOAP method name (or *)", text, method)
	}
	return matchRule{Method: method, Substring: substring}, nil
}

func (r matchRule) String() string {
	if r.Substring == "" {
		return r.Method
	}
	return r.Method + ":" + r.Substring
}

// matches reports whether a call to method with this request body is selected.
// The substring is looked for both as given and XML-escaped, so "a&b" matches
// a body that carries "a&amp;b".
func (r matchRule) matches(method string, body []byte) bool {
	if r.Method != "*" && r.Method != method {
		return false
	}
	if r.Substring == "" || bytes.Contains(body, []byte(r.Substring)) {
		return true
	}
	var escaped bytes.Buffer
	_ = xml.EscapeText(&escaped, []byte(r.Substring))
	return bytes.Contains(body, escaped.Bytes())
}

func validMethodName(name string) bool {
	if name == "*" {
		return true
	}
	for _, c := range name {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Rules is one immutable set of behaviour rules. Updates replace the whole
// value, so readers may keep a copy without locking.
type Rules struct {
	TaskDurations map[string]time.Duration // method (or "*") -> how long its tasks look running
	Fail          []matchRule
	Hang          []matchRule
	MethodDelays  map[string]time.Duration // method (or "*") -> extra delay before the call
}

func emptyRules() Rules {
	return Rules{
		TaskDurations: map[string]time.Duration{},
		MethodDelays:  map[string]time.Duration{},
	}
}

func lookupDuration(m map[string]time.Duration, method string) time.Duration {
	if d, ok := m[method]; ok {
		return d
	}
	return m["*"]
}

// taskDuration is how long a task returned by method should look running.
func (r Rules) taskDuration(method string) time.Duration {
	return lookupDuration(r.TaskDurations, method)
}

func (r Rules) methodDelay(method string) time.Duration {
	return lookupDuration(r.MethodDelays, method)
}

func firstMatch(rules []matchRule, method string, body []byte) (matchRule, bool) {
	for _, rule := range rules {
		if rule.matches(method, body) {
			return rule, true
		}
	}
	return matchRule{}, false
}

// --- text forms used by flags ---------------------------------------------

// parseDuration accepts a Go duration ("2s", "500ms") or a bare number of
// milliseconds ("1500").
func parseDuration(text string) (time.Duration, error) {
	text = strings.TrimSpace(text)
	if ms, err := strconv.ParseFloat(text, 64); err == nil {
		if ms < 0 || math.IsNaN(ms) || math.IsInf(ms, 0) {
			return 0, fmt.Errorf("duration %q must be a non-negative number of milliseconds", text)
		}
		return time.Duration(ms * float64(time.Millisecond)), nil
	}
	d, err := time.ParseDuration(text)
	if err != nil {
		return 0, fmt.Errorf("duration %q: want e.g. 2s, 500ms or a number of milliseconds", text)
	}
	if d < 0 {
		return 0, fmt.Errorf("duration %q must not be negative", text)
	}
	return d, nil
}

// parseDurationMap parses "Method=dur,Method=dur" into m.
func parseDurationMap(text string, m map[string]time.Duration) error {
	for _, item := range splitList(text) {
		method, value, ok := strings.Cut(item, "=")
		method = strings.TrimSpace(method)
		if !ok || method == "" || !validMethodName(method) {
			return fmt.Errorf("%q: want Method=duration (Method may be *)", item)
		}
		d, err := parseDuration(value)
		if err != nil {
			return fmt.Errorf("%s: %w", method, err)
		}
		m[method] = d
	}
	return nil
}

func splitList(text string) []string {
	var items []string
	for _, item := range strings.Split(text, ",") {
		if item = strings.TrimSpace(item); item != "" {
			items = append(items, item)
		}
	}
	return items
}

// listFlag collects a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(value string) error {
	*l = append(*l, splitList(value)...)
	return nil
}

// durationMapFlag collects "Method=duration" pairs from a repeatable flag.
type durationMapFlag map[string]time.Duration

func (m durationMapFlag) String() string { return formatDurationMap(m) }

func (m durationMapFlag) Set(value string) error { return parseDurationMap(value, m) }

func formatDurationMap(m map[string]time.Duration) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, k+"="+m[k].String())
	}
	return strings.Join(parts, ",")
}

func parseMatchRules(texts []string) ([]matchRule, error) {
	rules := make([]matchRule, 0, len(texts))
	for _, text := range texts {
		rule, err := parseMatchRule(text)
		if err != nil {
			return nil, err
		}
		rules = append(rules, rule)
	}
	return rules, nil
}

// --- JSON form used by /_nestlab/config ------------------------------------

// rulesDocument is the JSON shape of Rules. Task durations are Go duration
// strings; method delays are milliseconds.
type rulesDocument struct {
	TaskDurations map[string]string  `json:"task_durations"`
	Fail          []string           `json:"fail"`
	Hang          []string           `json:"hang"`
	MethodDelays  map[string]float64 `json:"method_delays"`
}

func (r Rules) document() rulesDocument {
	doc := rulesDocument{
		TaskDurations: map[string]string{},
		Fail:          []string{},
		Hang:          []string{},
		MethodDelays:  map[string]float64{},
	}
	for method, d := range r.TaskDurations {
		doc.TaskDurations[method] = d.String()
	}
	for _, rule := range r.Fail {
		doc.Fail = append(doc.Fail, rule.String())
	}
	for _, rule := range r.Hang {
		doc.Hang = append(doc.Hang, rule.String())
	}
	for method, d := range r.MethodDelays {
		doc.MethodDelays[method] = float64(d) / float64(time.Millisecond)
	}
	return doc
}

// applyDocument returns a copy of r with the keys present in the JSON object
// replaced. A key set to null or an empty value clears that kind of rule.
// Task durations take a Go duration string or a number of milliseconds;
// method delays take a number of milliseconds or a Go duration string.
func (r Rules) applyDocument(body []byte) (Rules, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return r, fmt.Errorf("want a JSON object: %v", err)
	}
	next := r
	for key, value := range raw {
		isNull := string(bytes.TrimSpace(value)) == "null"
		switch key {
		case "task_durations", "method_delays":
			m := map[string]time.Duration{}
			if !isNull {
				var items map[string]interface{}
				if err := json.Unmarshal(value, &items); err != nil {
					return r, fmt.Errorf("%s: want an object of method: duration", key)
				}
				for method, v := range items {
					if !validMethodName(method) {
						return r, fmt.Errorf("%s: %q is not a SOAP method name (or *)", key, method)
					}
					d, err := durationValue(v)
					if err != nil {
						return r, fmt.Errorf("%s.%s: %v", key, method, err)
					}
					m[method] = d
				}
			}
			if key == "task_durations" {
				next.TaskDurations = m
			} else {
				next.MethodDelays = m
			}
		case "fail", "hang":
			var texts []string
			if !isNull {
				if err := json.Unmarshal(value, &texts); err != nil {
					return r, fmt.Errorf("%s: want a list of \"Method[:substring]\" strings", key)
				}
			}
			rules, err := parseMatchRules(texts)
			if err != nil {
				return r, fmt.Errorf("%s: %v", key, err)
			}
			if key == "fail" {
				next.Fail = rules
			} else {
				next.Hang = rules
			}
		default:
			return r, fmt.Errorf("unknown key %q (known: task_durations, fail, hang, method_delays)", key)
		}
	}
	return next, nil
}

func durationValue(v interface{}) (time.Duration, error) {
	switch x := v.(type) {
	case float64:
		return parseDuration(strconv.FormatFloat(x, 'f', -1, 64))
	case string:
		return parseDuration(x)
	default:
		return 0, fmt.Errorf("want a duration string such as \"2s\" or a number of milliseconds")
	}
}

// ruleStore holds the current rules and the command-line baseline.
type ruleStore struct {
	mu       sync.RWMutex
	baseline Rules
	current  Rules
}

func newRuleStore(baseline Rules) *ruleStore {
	return &ruleStore{baseline: baseline, current: baseline}
}

func (s *ruleStore) get() Rules {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.current
}

func (s *ruleStore) update(body []byte) (Rules, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	next, err := s.current.applyDocument(body)
	if err != nil {
		return s.current, err
	}
	s.current = next
	return next, nil
}

func (s *ruleStore) reset() Rules {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.current = s.baseline
	return s.current
}
