package flowgraph

import (
	"context"
	"fmt"
	"io"

	graphviz "github.com/goccy/go-graphviz"
)

// Format is an output format of Render.
type Format string

// Formats.
const (
	FormatDOT Format = "dot"
	FormatSVG Format = "svg"
	FormatPNG Format = "png"
)

// ParseFormat checks a format name given on the command line.
func ParseFormat(name string) (Format, error) {
	switch f := Format(name); f {
	case FormatDOT, FormatSVG, FormatPNG:
		return f, nil
	}
	return "", fmt.Errorf("unknown graph format %q (want dot, svg or png)", name)
}

// Render writes the graph in a format: DOT text as WriteDOT does, or SVG and PNG laid out
// by Graphviz's dot engine, which runs in-process (compiled to WebAssembly, no dot binary
// needed).
func (g *Graph) Render(ctx context.Context, format Format, w io.Writer) error {
	if format == FormatDOT {
		return g.WriteDOT(w)
	}
	switch format {
	case FormatPNG:
		return renderPNG(ctx, []byte(g.DOT()), w)
	case FormatSVG:
	default:
		return fmt.Errorf("render: unknown format %q", format)
	}
	gv, err := graphviz.New(ctx)
	if err != nil {
		return fmt.Errorf("start graphviz: %w", err)
	}
	defer gv.Close()
	parsed, err := graphviz.ParseBytes([]byte(g.DOT()))
	if err != nil {
		return fmt.Errorf("graphviz parses the DOT: %w", err)
	}
	defer parsed.Close()
	if err := gv.Render(ctx, parsed, graphviz.SVG, w); err != nil {
		return fmt.Errorf("graphviz renders svg: %w", err)
	}
	return nil
}
