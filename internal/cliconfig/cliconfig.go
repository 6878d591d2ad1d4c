// Package cliconfig layers a daemon's configuration the way nsqx documents
// it: a flag given on the command line beats an environment variable, which
// beats the --config TOML file, which beats the flag's default.
//
// It works on a plain flag.FlagSet: values from the environment and the file
// are applied with FlagSet.Set, so every flag's own parser validates them and
// an error names the flag. No reflection.
//
// TOML keys are flag names with '-' replaced by '_' (NSQ's rule), or the
// name given in Aliases for the flags NSQ renames (for example nsqd's
// --node-id is "id" in the file). Environment variables are the prefix plus
// the flag name upper-cased with '-' replaced by '_' (NSQD_MEM_QUEUE_SIZE).
// A repeatable flag takes a TOML array, or a comma-separated variable.
package cliconfig

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Layers describes where values other than the command line come from.
type Layers struct {
	// EnvPrefix is prepended to environment variable names ("NSQD_").
	EnvPrefix string
	// Aliases maps a flag name to its TOML key where it is not the flag
	// name with '-' replaced by '_'.
	Aliases map[string]string
	// Repeatable names flags that accept several values (each TOML array
	// element and each comma-separated env value is Set on its own).
	Repeatable map[string]bool
	// Ignore names flags that are never read from the file or environment
	// (config itself, version).
	Ignore map[string]bool
	// Environ is the environment as os.Environ returns it; nil means
	// os.Environ().
	Environ []string
	// OnUnknown, when set, receives the keys of the TOML file that name no
	// flag, sorted, and Apply goes on without them (NSQ's daemons ignore
	// such keys, so a config file NSQ accepts must start nsqx too). When
	// nil, unknown keys are an error.
	OnUnknown func(file string, keys []string)
}

// Key returns the TOML key of a flag.
func (l Layers) Key(flagName string) string {
	if k, ok := l.Aliases[flagName]; ok {
		return k
	}
	return strings.ReplaceAll(flagName, "-", "_")
}

// EnvName returns the environment variable of a flag.
func (l Layers) EnvName(flagName string) string {
	return l.EnvPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// Apply parses args into fs, then fills every flag not set on the command
// line from the environment, then from the TOML file named by the flag
// configFlag (if that flag exists and is non-empty). Unknown keys in the file
// go to OnUnknown, or are an error without it.
func (l Layers) Apply(fs *flag.FlagSet, args []string, configFlag string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	env := map[string]string{}
	environ := l.Environ
	if environ == nil {
		environ = os.Environ()
	}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(k, l.EnvPrefix) {
			env[k] = v
		}
	}

	var file map[string]any
	var fileName string
	if cf := fs.Lookup(configFlag); cf != nil {
		fileName = cf.Value.String()
		if fileName == "" && !set[configFlag] {
			fileName = env[l.EnvName(configFlag)]
		}
	}
	if fileName != "" {
		md, err := toml.DecodeFile(fileName, &file)
		if err != nil {
			return fmt.Errorf("config file %s: %w", fileName, err)
		}
		_ = md
		known := map[string]bool{}
		fs.VisitAll(func(f *flag.Flag) { known[l.Key(f.Name)] = true })
		var unknown []string
		for k := range file {
			if !known[k] {
				unknown = append(unknown, k)
			}
		}
		if len(unknown) > 0 {
			sort.Strings(unknown)
			if l.OnUnknown == nil {
				return fmt.Errorf("config file %s: unknown option(s) %s", fileName, strings.Join(unknown, ", "))
			}
			l.OnUnknown(fileName, unknown)
		}
	}

	var errs []error
	fs.VisitAll(func(f *flag.Flag) {
		if set[f.Name] || f.Name == configFlag || l.Ignore[f.Name] {
			return
		}
		if v, ok := env[l.EnvName(f.Name)]; ok {
			vals := []string{v}
			if l.Repeatable[f.Name] {
				vals = splitList(v)
			}
			for _, s := range vals {
				if err := fs.Set(f.Name, s); err != nil {
					errs = append(errs, fmt.Errorf("invalid value %q for %s (from %s): %w", s, "-"+f.Name, l.EnvName(f.Name), err))
				}
			}
			return
		}
		if v, ok := file[l.Key(f.Name)]; ok {
			vals, err := tomlStrings(v)
			if err != nil {
				errs = append(errs, fmt.Errorf("config file %s: option %s: %w", fileName, l.Key(f.Name), err))
				return
			}
			for _, s := range vals {
				if err := fs.Set(f.Name, s); err != nil {
					errs = append(errs, fmt.Errorf("config file %s: invalid value %q for %s: %w", fileName, s, l.Key(f.Name), err))
				}
			}
		}
	})
	return errors.Join(errs...)
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// tomlStrings turns a TOML value into the strings a flag's Set accepts.
// Durations may be written as strings ("60s") or integers (milliseconds, as
// NSQ reads them); integers are passed through as decimal text, so a
// duration flag must accept a plain integer (see Duration).
func tomlStrings(v any) ([]string, error) {
	switch x := v.(type) {
	case string:
		return []string{x}, nil
	case bool:
		return []string{strconv.FormatBool(x)}, nil
	case int64:
		return []string{strconv.FormatInt(x, 10)}, nil
	case float64:
		return []string{strconv.FormatFloat(x, 'g', -1, 64)}, nil
	case []any:
		var out []string
		for _, e := range x {
			s, err := tomlStrings(e)
			if err != nil {
				return nil, err
			}
			out = append(out, s...)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("unsupported value %v (%T)", v, v)
	}
}
