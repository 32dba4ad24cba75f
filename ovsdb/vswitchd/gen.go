// Package vswitchd holds the libovsdb models of the part of Open vSwitch's database that
// dvrflow uses, generated from the schema shipped with OVS 3.1 (vswitch.ovsschema, copied
// here so that the generation is repeatable).
//
// The models are narrow on purpose: they hold only the tables and columns dvrflow reads or
// writes anywhere in the repository (the ovsdb client, the bench's hypervisor), not the
// whole schema. libovsdb accepts a model with a subset of a table's columns (it checks that
// every tagged field names a column of the server's schema with the right type, and ignores
// the others), and the full models cost a lot at 10,000 ports: Interface alone has about 40
// columns, and every cached row is copied on every update. The models are also generated
// with modelgen's -extended option, whose DeepCopy/Equals methods let libovsdb's cache copy
// a row directly instead of through a JSON round trip (model.Clone's fallback).
//
// To use another column: add it to its table's list in the first go:generate line below (a
// new table gets its own TABLE=COLUMN,... argument), run `go generate ./ovsdb/vswitchd`, and,
// if dvrflow must see the column's value in its cache, add the field to the monitor in
// ovsdb.Connect (client.WithTable lists the monitored columns; a column only written, like
// Port.vlan_mode, need not be monitored).
package vswitchd

//go:generate go run ./internal/narrow -o narrow.ovsschema vswitch.ovsschema Open_vSwitch=bridges,next_cfg,cur_cfg Bridge=name,ports,datapath_type,fail_mode,protocols,other_config,flow_tables Port=name,interfaces,tag,vlan_mode,trunks Interface=name,type,options,external_ids,ofport,ofport_request,error Flow_Table=name
//go:generate go tool modelgen -extended -p vswitchd -o . narrow.ovsschema
