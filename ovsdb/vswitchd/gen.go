// Package vswitchd holds the libovsdb models of Open vSwitch's database, generated from the
// schema shipped with OVS 3.1 (vswitch.ovsschema, copied here so the generation is repeatable).
package vswitchd

//go:generate go tool modelgen -p vswitchd -o . vswitch.ovsschema
