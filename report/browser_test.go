package report

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/dvrflow/dvrflow/inspect"
	"github.com/dvrflow/dvrflow/sandbox"
)

var updateScreenshot = flag.Bool("update-screenshot", false, "write the browser test's screenshot to docs/cli/report.png")

// TestReportInBrowser loads a generated report in headless Chromium (installed with
// apt-get when missing) and checks what it renders: every flow is a row, typing in the
// filter narrows the rows to exactly the ones that contain the words, and the bridge
// select narrows them further.
func TestReportInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a browser; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	chromium, err := sandbox.EnsureChromium(ctx)
	if err != nil {
		t.Fatalf("the browser test needs Chromium: %v", err)
	}

	in := scenarioInput(t, "dvr_vlan")
	page := filepath.Join(t.TempDir(), "report.html")
	f, err := os.Create(page)
	if err != nil {
		t.Fatal(err)
	}
	if err := Write(f, in); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}

	browser := newBrowser(t, ctx, chromium)
	if err := chromedp.Do(browser, chromedp.Navigate("file://"+page), chromedp.WaitVisible(chromedp.ID("filter"))); err != nil {
		t.Fatalf("load the report: %v", err)
	}

	var all []inspect.FlowRecord
	for _, bridge := range []string{"br-int", "br-vlan"} {
		all = append(all, in.Flows[bridge]...)
	}
	assertRows(t, browser, "no filter", all)

	// A VM port: the rows that name it in their match, actions or owner.
	const port = "tapc0000001-00"
	if err := chromedp.Do(browser, chromedp.SendKeys(chromedp.ID("filter"), port)); err != nil {
		t.Fatal(err)
	}
	want := matching(all, func(r inspect.FlowRecord) bool { return containsInCells(r, port) })
	if len(want) == 0 || len(want) >= len(all) {
		t.Fatalf("%d of %d flows name %s: the filter would prove nothing", len(want), len(all), port)
	}
	assertRows(t, browser, "filter "+port, want)
	screenshot(t, browser)

	// Two words: both must occur (the port's ARP flows).
	if err := chromedp.Do(browser, chromedp.SendKeys(chromedp.ID("filter"), " ARP")); err != nil {
		t.Fatal(err)
	}
	want = matching(all, func(r inspect.FlowRecord) bool { return containsInCells(r, port) && containsInCells(r, "arp") })
	assertRows(t, browser, "filter "+port+" ARP", want)

	// Cleared filter, bridge select: br-vlan's flows only.
	if err := chromedp.Do(browser,
		chromedp.Evaluate[chromedp.Void](`(function(){
			var f = document.getElementById("filter"); f.value = ""; f.dispatchEvent(new Event("input"));
			var s = document.getElementById("select-bridge"); s.value = "br-vlan"; s.dispatchEvent(new Event("change"));
		})()`),
	); err != nil {
		t.Fatal(err)
	}
	assertRows(t, browser, "bridge br-vlan", in.Flows["br-vlan"])
}

// newBrowser starts headless Chromium for the test; it is stopped (by the allocator,
// through the process it started) when the test ends.
func newBrowser(t *testing.T, ctx context.Context, chromium string) context.Context {
	t.Helper()
	opts := append(slices.Clone(chromedp.DefaultExecAllocatorOptions[:]),
		chromedp.ExecPath(chromium),
		chromedp.NoSandbox, // the tests run as root
		chromedp.DisableGPU,
		chromedp.WindowSize(1600, 1000),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	browser, cancelBrowser := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	if err := chromedp.Do(browser); err != nil {
		t.Fatalf("start Chromium %s: %v", chromium, err)
	}
	return browser
}

// assertRows checks that the page shows exactly the given flows' rows, in order, and
// counts them in its "N of M flows shown" line.
func assertRows(t *testing.T, browser context.Context, what string, want []inspect.FlowRecord) {
	t.Helper()
	visible, err := chromedp.Run(browser, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll("#flow-table tbody tr"))
			.filter(function (r) { return !r.hidden && r.offsetParent !== null; })
			.map(function (r) { return Array.from(r.cells).map(function (c) { return c.textContent; }).join("\t"); })`))
	if err != nil {
		t.Fatalf("%s: read the rows: %v", what, err)
	}
	shown, err := chromedp.Run(browser, chromedp.Text(chromedp.ID("shown")))
	if err != nil {
		t.Fatalf("%s: read the count: %v", what, err)
	}
	wantRows := make([]string, len(want))
	for i, r := range want {
		wantRows[i] = strings.Join(rowCells(r), "\t")
	}
	if !slices.Equal(visible, wantRows) {
		t.Errorf("%s: %d rows shown, want %d:\n got %q\nwant %q", what, len(visible), len(wantRows), visible, wantRows)
	}
	if shown != itoa(len(want)) {
		t.Errorf("%s: the page counts %s rows shown, want %d", what, shown, len(want))
	}
}

func matching(records []inspect.FlowRecord, keep func(inspect.FlowRecord) bool) []inspect.FlowRecord {
	var out []inspect.FlowRecord
	for _, r := range records {
		if keep(r) {
			out = append(out, r)
		}
	}
	return out
}

// containsInCells is the page's filter for one word: some cell contains it, case ignored.
func containsInCells(r inspect.FlowRecord, word string) bool {
	for _, c := range rowCells(r) {
		if strings.Contains(strings.ToLower(c), strings.ToLower(word)) {
			return true
		}
	}
	return false
}

func itoa(n int) string { return strconv.Itoa(n) }

// screenshot captures the whole page; with -update-screenshot it becomes the picture in
// docs/cli/report.md.
func screenshot(t *testing.T, browser context.Context) {
	t.Helper()
	png, err := chromedp.Run(browser, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if len(png) < 8 || string(png[1:4]) != "PNG" {
		t.Fatalf("the screenshot is not a PNG (%d bytes)", len(png))
	}
	if *updateScreenshot {
		path := filepath.Join("..", "docs", "cli", "report.png")
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
