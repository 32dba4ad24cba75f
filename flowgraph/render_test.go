package flowgraph_test

import (
	"bytes"
	"context"
	"encoding/xml"
	"errors"
	"image/png"
	"io"
	"strings"
	"testing"

	"github.com/dvrflow/dvrflow/flowgraph"
)

func TestRenderSVG(t *testing.T) {
	g := scenarioGraph(t, "dvr_vxlan_l2pop")
	var out bytes.Buffer
	if err := g.Render(context.Background(), flowgraph.FormatSVG, &out); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML whose root is <svg>; its text (Graphviz escapes '-' as &#45;) names
	// the tables, bridges, patch ports and exits.
	dec := xml.NewDecoder(&out)
	root := ""
	var text strings.Builder
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if root == "" {
				root = tok.Name.Local
			}
		case xml.CharData:
			text.Write(tok)
			text.WriteByte('\n')
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q, want svg", root)
	}
	for _, want := range []string{"LOCAL_SWITCHING", "TRANSIENT", "PATCH_LV_TO_TUN", "FLOOD_TO_TUN", "br-int", "br-tun", "patch-tun", "tunnels", "VM ports"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestRenderPNG(t *testing.T) {
	g := scenarioGraph(t, "dvr_vlan")
	var out bytes.Buffer
	if err := g.Render(context.Background(), flowgraph.FormatPNG, &out); err != nil {
		t.Fatal(err)
	}
	img, err := png.Decode(&out)
	if err != nil {
		t.Fatalf("not a PNG: %v", err)
	}
	b := img.Bounds()
	if b.Dx() < 200 || b.Dy() < 100 {
		t.Fatalf("PNG is %dx%d, too small for the pipeline", b.Dx(), b.Dy())
	}
	// Lines and text on white: a filled-curve renderer (goccy/go-graphviz#106) paints far
	// more dark pixels than that.
	dark := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r+g+bl < 3*0x4000 {
				dark++
			}
		}
	}
	if share := float64(dark) / float64(b.Dx()*b.Dy()); share > 0.015 {
		t.Errorf("%.1f%% of the PNG is dark: edges drawn as filled shapes?", 100*share)
	}
}

func TestRenderDOTEqualsWriteDOT(t *testing.T) {
	g := scenarioGraph(t, "legacy_vlan")
	var out bytes.Buffer
	if err := g.Render(context.Background(), flowgraph.FormatDOT, &out); err != nil {
		t.Fatal(err)
	}
	if out.String() != g.DOT() {
		t.Error("Render(dot) differs from DOT()")
	}
}

func TestParseFormat(t *testing.T) {
	for _, name := range []string{"dot", "svg", "png"} {
		if f, err := flowgraph.ParseFormat(name); err != nil || string(f) != name {
			t.Errorf("ParseFormat(%q) = %q, %v", name, f, err)
		}
	}
	if _, err := flowgraph.ParseFormat("gif"); err == nil {
		t.Error("ParseFormat(gif) succeeded")
	}
}
