// Package architecture holds no product code: its test pins which of the project's
// packages may import which (see imports_test.go), so that data keeps flowing one way —
// sources → northbound model → agent → pure generators → write path — and nothing in the
// product leans on the test harness.
package architecture
