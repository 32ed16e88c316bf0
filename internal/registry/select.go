package registry

import "fmt"

// The process environment variables that select the registry file and the environment
// a task runs against, and their defaults (docs/contracts.md §9).
const (
	PathVar     = "SHARDFLOW_REGISTRY"
	DefaultPath = "shards.yaml"
	EnvVar      = "SHARDFLOW_ENV"
	DefaultEnv  = "local"
)

// Selection is the registry and environment a process runs against.
type Selection struct {
	Path     string // the registry file
	Registry *Registry
	Name     string // the environment's name
	Env      *Environment
}

// Select loads the registry that vars (the process environment, read by main) names in
// SHARDFLOW_REGISTRY (default shards.yaml) and picks the environment SHARDFLOW_ENV
// (default local). A bad file or an unknown environment is an error naming it.
func Select(vars map[string]string) (*Selection, error) {
	s := &Selection{Path: vars[PathVar], Name: vars[EnvVar]}
	if s.Path == "" {
		s.Path = DefaultPath
	}
	if s.Name == "" {
		s.Name = DefaultEnv
	}
	r, err := Load(s.Path)
	if err != nil {
		return nil, err
	}
	e, err := r.Environment(s.Name)
	if err != nil {
		return nil, fmt.Errorf("%s=%s: %w", EnvVar, s.Name, err)
	}
	s.Registry, s.Env = r, e
	return s, nil
}
