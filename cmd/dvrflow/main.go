// Command dvrflow is the flow-debugging CLI of a DVR node: it shows, explains, traces and
// diffs the OpenFlow pipeline that dvrflow-agent (or Neutron's own Open vSwitch agent)
// programmed, without writing to the switch.
//
//	dvrflow flows [BRIDGE...]   every flow with its table name, counters, rule and owner
//	dvrflow diff [BRIDGE...]    what dvrflow would install against what the switch holds
//	dvrflow trace ...           a packet's path through the bridges (ofproto/trace)
//	dvrflow graph [BRIDGE]      the pipeline as a picture
//	dvrflow report --out F      one self-contained HTML page for a ticket
//	dvrflow status              the running agent's view
//
// Exit codes: 0 success (diff: equal), 1 diff found differences, 2 error.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

// Exit codes, documented in the README ("Debugging a node").
const (
	exitOK        = 0
	exitDifferent = 1
	exitError     = 2
)

// errDifferent is returned by commands whose answer is "not equal" (diff): exit 1, no error
// message.
var errDifferent = errors.New("different")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	root := newRootCommand()
	err := root.ExecuteContext(ctx)
	stop()
	switch {
	case err == nil:
		os.Exit(exitOK)
	case errors.Is(err, errDifferent):
		os.Exit(exitDifferent)
	default:
		fmt.Fprintln(os.Stderr, "dvrflow:", err)
		os.Exit(exitError)
	}
}
