package controller

import (
	"errors"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// A lasting reconcile failure is logged at error level once, again when it changes, and
// its end once; the retries in between go to debug level.
func TestFailureLogLogsALastingFailureOnce(t *testing.T) {
	core, logs := observer.New(zapcore.DebugLevel)
	log := zap.New(core)
	var f failureLog
	down := errors.New("connect to bridge br-int: no such file")
	for range 5 {
		f.log(log, down, 500*time.Millisecond)
	}
	f.log(log, errors.New("ovsdb: not connected"), 500*time.Millisecond)
	f.recovered(log)
	f.recovered(log) // nothing to report any more
	if n := logs.FilterLevelExact(zapcore.ErrorLevel).Len(); n != 2 {
		t.Errorf("%d error lines, want 2 (the failure, then the other failure)", n)
	}
	if n := logs.FilterLevelExact(zapcore.DebugLevel).Len(); n != 4 {
		t.Errorf("%d debug lines, want 4 (the repeats)", n)
	}
	if got := logs.FilterMessage("reconcile succeeded again").All(); len(got) != 1 || got[0].ContextMap()["failures"] != int64(6) {
		t.Errorf("recovery lines %v, want one counting 6 failures", got)
	}
}
