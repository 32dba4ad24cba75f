package config

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"gopkg.in/ini.v1"
)

// Warning is a non-fatal remark about a config file: an unknown section or option, a
// Neutron option dvrflow does not use, or a deprecated name.
type Warning struct {
	File    string
	Section string
	Option  string // empty when the warning is about the whole section
	Reason  string
}

// String renders the warning as "FILE: [SECTION] OPTION: REASON".
func (w Warning) String() string {
	if w.Option == "" {
		return fmt.Sprintf("%s: [%s]: %s", w.File, w.Section, w.Reason)
	}
	return fmt.Sprintf("%s: [%s] %s: %s", w.File, w.Section, w.Option, w.Reason)
}

// OptionError is an invalid option value in a config file.
type OptionError struct {
	File    string
	Section string
	Option  string
	Value   string
	Err     error // what is wrong, phrased to follow the quoted value
}

// Error renders the error as `FILE: [SECTION] OPTION: "VALUE" REASON`.
func (e *OptionError) Error() string {
	return fmt.Sprintf("%s: [%s] %s: %q %v", e.File, e.Section, e.Option, e.Value, e.Err)
}

// Unwrap returns the reason.
func (e *OptionError) Unwrap() error { return e.Err }

// iniLoadOptions parse files the way oslo.config does: names are case-insensitive (DEFAULT
// stays DEFAULT), "#" or ";" start a comment only at the beginning of a line, indented lines
// continue a value, a backslash is an ordinary character, and surrounding quotes are
// removed.
var iniLoadOptions = ini.LoadOptions{
	Insensitive:                true,
	IgnoreInlineComment:        true,
	IgnoreContinuation:         true,
	AllowPythonMultilineValues: true,
}

// LoadConfig returns the defaults overridden by the given ini files, in order (a later file
// overrides an earlier one, option by option, as with oslo.config's repeated
// --config-file). Unknown sections and options, Neutron options dvrflow ignores and
// deprecated names are returned as warnings. An unreadable file or an invalid value is an
// error naming the file, section, option and value; all invalid values are reported
// together (as *OptionError, joined).
func LoadConfig(files ...string) (*Config, []Warning, error) {
	cfg := DefaultConfig()
	known := map[string]map[string]option{}
	for _, o := range options {
		if known[o.section] == nil {
			known[o.section] = map[string]option{}
		}
		known[o.section][o.name] = o
	}
	var warnings []Warning
	var errs []error
	for _, file := range files {
		f, err := ini.LoadSources(iniLoadOptions, file)
		if err != nil {
			return nil, warnings, fmt.Errorf("config file %s: %w", file, err)
		}
		for _, sec := range f.Sections() {
			w, e := applySection(cfg, known, file, sec)
			warnings = append(warnings, w...)
			errs = append(errs, e...)
		}
	}
	if len(errs) > 0 {
		return nil, warnings, errors.Join(errs...)
	}
	return cfg, warnings, nil
}

// applySection applies one ini section's options to cfg.
func applySection(cfg *Config, known map[string]map[string]option, file string, sec *ini.Section) ([]Warning, []error) {
	name := sec.Name()
	if strings.EqualFold(name, ini.DefaultSection) {
		name = ini.DefaultSection // ini.v1 lower-cases an explicit [DEFAULT] header
	}
	if raw, ok := rawSections[name]; ok {
		for _, key := range sec.Keys() {
			raw(cfg)[key.Name()] = key.Value()
		}
		return nil, nil
	}
	if slices.Contains(serverOnlySections, name) {
		return nil, nil
	}
	_, isKnown := known[name]
	_, isIgnored := ignoredOptions[name]
	if !isKnown && !isIgnored && name != ini.DefaultSection {
		return []Warning{{File: file, Section: name, Reason: "unknown section; ignored"}}, nil
	}
	var warnings []Warning
	var errs []error
	for _, key := range sec.Keys() {
		opt := key.Name()
		warn := func(reason string) {
			warnings = append(warnings, Warning{File: file, Section: name, Option: opt, Reason: reason})
		}
		if current, ok := aliasOptions[name][opt]; ok {
			warn("deprecated name; use " + current)
			opt = current
		}
		o, ok := known[name][opt]
		switch {
		case ok:
			if err := o.set(cfg, key.Value()); err != nil {
				errs = append(errs, &OptionError{File: file, Section: name, Option: opt, Value: key.Value(), Err: err})
			}
		case renamedOptions[name][opt] != "":
			warn(renamedOptions[name][opt])
		case slices.Contains(ignoredOptions[name], opt):
			warn("Neutron option not used by dvrflow; ignored")
		case slices.Contains(serverOnlyOptions[name], opt):
			// neutron-server's option in a shared neutron.conf: nothing to say.
		default:
			warn("unknown option; ignored")
		}
	}
	return warnings, errs
}
