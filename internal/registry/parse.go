package registry

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"

	"gopkg.in/yaml.v3"
)

// FieldError is one problem in shards.yaml, located by its field path
// (for example "shards[3].buckets").
type FieldError struct {
	Path string
	Line int // 0 when the problem is not at one line
	Msg  string
}

func (e *FieldError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s: %s (line %d)", e.Path, e.Msg, e.Line)
	}
	return fmt.Sprintf("%s: %s", e.Path, e.Msg)
}

// Errors is every problem found in one file. Its Error lists them one per line.
type Errors []*FieldError

func (es Errors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

func (es *Errors) add(path string, line int, format string, args ...any) {
	*es = append(*es, &FieldError{Path: path, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func (es Errors) orNil() error {
	if len(es) == 0 {
		return nil
	}
	return es
}

// Load reads the file at path and checks it (see Check).
func Load(path string) (*Registry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open registry: %w", err)
	}
	defer f.Close()
	r, err := Check(f)
	if err != nil {
		return nil, fmt.Errorf("%s:\n%w", path, err)
	}
	return r, nil
}

// Check parses and validates, and reports the problems of both steps together, so one
// run of `shardctl validate` shows everything that is wrong with a file.
func Check(rd io.Reader) (*Registry, error) {
	r, errs := parse(rd)
	if r == nil {
		return nil, errs
	}
	if err := r.Validate(); err != nil {
		errs = append(errs, err.(Errors)...)
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

// Parse reads shards.yaml strictly: every unknown key, every value of the wrong type and
// every plaintext credential is reported, each with its field path, in one Errors.
// Parse does not validate semantics; call Validate (Load does both).
func Parse(rd io.Reader) (*Registry, error) {
	r, errs := parse(rd)
	if len(errs) > 0 {
		return nil, errs
	}
	return r, nil
}

// parse returns the decoded registry (nil when the file cannot be decoded at all) and
// the strict-parse problems found.
func parse(rd io.Reader) (*Registry, Errors) {
	data, err := io.ReadAll(rd)
	if err != nil {
		return nil, Errors{{Path: "(file)", Msg: "read: " + err.Error()}}
	}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, Errors{{Path: "(file)", Msg: "empty file"}}
		}
		return nil, Errors{{Path: "(file)", Msg: "not valid YAML: " + err.Error()}}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	var errs Errors
	checkKeys(root, reflect.TypeOf(Registry{}), "", &errs)
	scanSecrets(root, "", &errs)
	r := Default()
	if err := root.Decode(r); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			for _, m := range te.Errors {
				errs.add("(value)", 0, "%s", m)
			}
		} else {
			errs.add("(value)", 0, "%s", err.Error())
		}
		return nil, errs
	}
	return r, errs
}

var customScalar = map[reflect.Type]bool{
	reflect.TypeOf(Range{}):     true,
	reflect.TypeOf(Duration{}):  true,
	reflect.TypeOf(ClockTime{}): true,
	reflect.TypeOf(Period{}):    true,
}

// checkKeys walks the YAML tree beside the Go type and reports keys the type does not have.
func checkKeys(n *yaml.Node, t reflect.Type, path string, errs *Errors) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if customScalar[t] {
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		if n.Kind != yaml.MappingNode {
			if t.String() != "time.Time" && !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				errs.add(orRoot(path), n.Line, "want a mapping")
			}
			return
		}
		fields := map[string]reflect.Type{}
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if tag := strings.Split(f.Tag.Get("yaml"), ",")[0]; tag != "" && tag != "-" {
				fields[tag] = f.Type
			}
		}
		seen := map[string]bool{}
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if seen[k.Value] {
				errs.add(p, k.Line, "duplicate key")
			}
			seen[k.Value] = true
			ft, ok := fields[k.Value]
			if !ok {
				errs.add(p, k.Line, "unknown key (known: %s)", strings.Join(sortedKeys(fields), ", "))
				continue
			}
			checkKeys(v, ft, p, errs)
		}
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			if !(n.Kind == yaml.ScalarNode && n.Tag == "!!null") {
				errs.add(orRoot(path), n.Line, "want a list")
			}
			return
		}
		for i, c := range n.Content {
			checkKeys(c, t.Elem(), fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case reflect.Map:
		if n.Kind != yaml.MappingNode {
			errs.add(orRoot(path), n.Line, "want a mapping")
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			checkKeys(n.Content[i+1], t.Elem(), join(path, n.Content[i].Value), errs)
		}
	}
}

var (
	// credentialInURL matches user:password@ inside a URL or DSN.
	credentialInURL = regexp.MustCompile(`://[^/\s:@]+:[^@\s]+@`)
	// credentialKV matches password=... inside a key/value DSN.
	credentialKV = regexp.MustCompile(`(?i)\b(password|pwd|passwd)\s*=\s*\S`)
	// secretKeyName matches keys that would only ever hold a secret.
	secretKeyName = regexp.MustCompile(`(?i)^(password|passwd|pwd|secret|secret_key|access_key|private_key|token_value|api_key)$`)
)

// scanSecrets reports every scalar that looks like a credential written in the file.
// Secrets belong in the environment or a secret store and are only referenced here.
func scanSecrets(n *yaml.Node, path string, errs *Errors) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			k, v := n.Content[i], n.Content[i+1]
			p := join(path, k.Value)
			if v.Kind == yaml.ScalarNode && v.Value != "" && secretKeyName.MatchString(k.Value) {
				errs.add(p, k.Line, "plaintext secret in shards.yaml; reference it instead, e.g. {env: NAME, k8s_secret: NAME}")
				continue
			}
			scanSecrets(v, p, errs)
		}
	case yaml.SequenceNode:
		for i, c := range n.Content {
			scanSecrets(c, fmt.Sprintf("%s[%d]", path, i), errs)
		}
	case yaml.ScalarNode:
		if credentialInURL.MatchString(n.Value) || credentialKV.MatchString(n.Value) {
			errs.add(orRoot(path), n.Line, "plaintext password in a connection string; reference a secret instead, e.g. {env: NAME, k8s_secret: NAME}")
		}
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

func sortedKeys(m map[string]reflect.Type) []string {
	return slices.Sorted(maps.Keys(m))
}
