package flows

// TableFlow is a flow as a generator creates it for a bridge whose tables are of type T: the
// same fields as Flow, but a table of that kind of bridge only. IntFlow, TunFlow and
// PhysFlow name its three instances.
type TableFlow[T BridgeTable] struct {
	Table    T
	Priority uint16
	Cookie   uint64
	Match    Match
	Actions  []Action
}

// The flows of each kind of bridge.
type (
	IntFlow  = TableFlow[IntTable]
	TunFlow  = TableFlow[TunTable]
	PhysFlow = TableFlow[PhysTable]
)

// Flow returns f as the switch sees it (table as a plain number). The action list is
// shared, not copied.
func (f TableFlow[T]) Flow() Flow {
	return Flow{Table: uint8(f.Table), Priority: f.Priority, Cookie: f.Cookie, Match: f.Match, Actions: f.Actions}
}

// String renders f as Flow.String does.
func (f TableFlow[T]) String() string { return f.Flow().String() }

// Target is where a generator adds the flows of one bridge. Its table type T is the
// bridge's kind, so Add accepts only flows in that kind's tables: a br-tun table on a
// physical bridge does not compile. IntTarget, TunTarget and PhysTarget make one over a
// bridge's flow list; which list is which bridge is decided there, once per bridge.
type Target[T BridgeTable] struct{ flows *[]Flow }

// IntTarget returns the entry point for adding flows to br-int's list fs.
func IntTarget(fs *[]Flow) Target[IntTable] { return Target[IntTable]{fs} }

// TunTarget returns the entry point for adding flows to br-tun's list fs.
func TunTarget(fs *[]Flow) Target[TunTable] { return Target[TunTable]{fs} }

// PhysTarget returns the entry point for adding flows to a physical bridge's list fs.
func PhysTarget(fs *[]Flow) Target[PhysTable] { return Target[PhysTable]{fs} }

// Add appends flows to the bridge's list, in order.
func (t Target[T]) Add(fs ...TableFlow[T]) {
	for _, f := range fs {
		*t.flows = append(*t.flows, f.Flow())
	}
}

// Goto is goto_table to a table named by its bridge kind's type (an untyped number does
// not compile).
func Goto[T BridgeTable](table T) Action { return GotoTable{Table: uint8(table)} }

// ResubmitTo is resubmit(,table) to a table named by its bridge kind's type.
func ResubmitTo[T BridgeTable](table T) Action { return Resubmit{Table: uint8(table)} }

// FlowsOf returns fs as the switch sees them (tables as plain numbers), for callers that
// hold a bridge's flows outside a Target: tests, and code that installs a fixed set.
func FlowsOf[T BridgeTable](fs []TableFlow[T]) []Flow {
	out := make([]Flow, 0, len(fs))
	Target[T]{&out}.Add(fs...)
	return out
}
