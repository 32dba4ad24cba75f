package flowgraph

import (
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/fogleman/gg"
	"github.com/goccy/go-graphviz/gvc"
	"github.com/golang/freetype/truetype"
	"golang.org/x/image/font"
	"golang.org/x/image/font/gofont/goregular"

	graphviz "github.com/goccy/go-graphviz"
)

// renderPNG lays the DOT out with Graphviz and paints it with pngPainter. go-graphviz's own
// PNG renderer (v0.2.1 to at least v0.2.10, goccy/go-graphviz#106) fills edge curves and
// leaves shape outlines undrawn, which turns a pipeline into black blobs; the painter
// follows Graphviz's rendering contract instead: fill a shape when asked, then stroke its
// outline with the pen.
func renderPNG(ctx context.Context, dot []byte, w io.Writer) error {
	face, err := newFontSource()
	if err != nil {
		return err
	}
	painter := &pngPainter{DefaultRenderEngine: &gvc.DefaultRenderEngine{}, fonts: face}
	renderPlugin, err := gvc.NewRenderPlugin(ctx, "png", painter)
	if err != nil {
		return fmt.Errorf("png render plugin: %w", err)
	}
	devicePlugin, err := gvc.PNGDevicePlugin(ctx)
	if err != nil {
		return fmt.Errorf("png device plugin: %w", err)
	}
	gv, err := graphviz.NewWithPlugins(ctx, renderPlugin, devicePlugin)
	if err != nil {
		return fmt.Errorf("start graphviz: %w", err)
	}
	defer gv.Close()
	parsed, err := graphviz.ParseBytes(dot)
	if err != nil {
		return fmt.Errorf("graphviz parses the DOT: %w", err)
	}
	defer parsed.Close()
	var discard bytes.Buffer
	if err := gv.Render(ctx, parsed, graphviz.PNG, &discard); err != nil {
		return fmt.Errorf("graphviz renders png: %w", err)
	}
	if painter.image == nil {
		return fmt.Errorf("graphviz rendered no page")
	}
	if err := painter.image.EncodePNG(w); err != nil {
		return fmt.Errorf("encode png: %w", err)
	}
	return nil
}

// fontSource makes faces of Go's own regular font (no system fonts needed), one per size.
type fontSource struct {
	font  *truetype.Font
	faces map[float64]font.Face
}

func newFontSource() (*fontSource, error) {
	f, err := truetype.Parse(goregular.TTF)
	if err != nil {
		return nil, fmt.Errorf("parse the Go font: %w", err)
	}
	return &fontSource{font: f, faces: map[float64]font.Face{}}, nil
}

func (s *fontSource) face(size float64) font.Face {
	if f, ok := s.faces[size]; ok {
		return f
	}
	f := truetype.NewFace(s.font, &truetype.Options{Size: size})
	s.faces[size] = f
	return f
}

// pngPainter is a Graphviz render engine that paints on a gg canvas.
type pngPainter struct {
	*gvc.DefaultRenderEngine
	fonts *fontSource
	image *gg.Context
}

func (p *pngPainter) x(job *gvc.Job, x float64) float64 { return job.Scale().X() * x }
func (p *pngPainter) y(job *gvc.Job, y float64) float64 { return -job.Scale().Y() * y }

func (p *pngPainter) BeginPage(_ context.Context, job *gvc.Job) error {
	p.image = gg.NewContext(int(job.Width()), int(job.Height()))
	p.image.SetRGB(1, 1, 1)
	p.image.Clear()
	t := job.Translation()
	p.image.Translate(p.x(job, t.X()), p.y(job, t.Y()))
	return nil
}

// EndPage keeps the canvas; renderPNG encodes it.
func (p *pngPainter) EndPage(context.Context, *gvc.Job) error { return nil }

func setColour(c *gg.Context, colour *gvc.Color) {
	rgba := colour.RGBAUint()
	c.SetRGBA255(int(rgba[0]), int(rgba[1]), int(rgba[2]), int(rgba[3]))
}

// paint fills the current path when asked (with the fill colour), then strokes it with
// the pen unless the pen is none.
func (p *pngPainter) paint(job *gvc.Job, filled bool) {
	obj := job.Object()
	if filled {
		setColour(p.image, obj.FillColor())
		p.image.FillPreserve()
	}
	if obj.Pen() == gvc.PenNone {
		p.image.ClearPath()
		return
	}
	setColour(p.image, obj.PenColor())
	p.image.SetLineWidth(obj.PenWidth() * job.Scale().X())
	switch obj.Pen() {
	case gvc.PenDashed:
		p.image.SetDash(6, 4)
	case gvc.PenDotted:
		p.image.SetDash(1.5, 3)
	default:
		p.image.SetDash()
	}
	p.image.Stroke()
}

func (p *pngPainter) Ellipse(_ context.Context, job *gvc.Job, a []*gvc.PointFloat, filled bool) error {
	if len(a) < 2 {
		return nil
	}
	rx := p.x(job, a[1].X()-a[0].X())
	ry := -p.y(job, a[1].Y()-a[0].Y())
	p.image.DrawEllipse(p.x(job, a[0].X()), p.y(job, a[0].Y()), rx, ry)
	p.paint(job, filled)
	return nil
}

func (p *pngPainter) Polygon(_ context.Context, job *gvc.Job, a []*gvc.PointFloat, filled bool) error {
	if len(a) == 0 {
		return nil
	}
	p.image.MoveTo(p.x(job, a[0].X()), p.y(job, a[0].Y()))
	for _, pt := range a[1:] {
		p.image.LineTo(p.x(job, pt.X()), p.y(job, pt.Y()))
	}
	p.image.ClosePath()
	p.paint(job, filled)
	return nil
}

func (p *pngPainter) BezierCurve(_ context.Context, job *gvc.Job, a []*gvc.PointFloat, filled bool) error {
	if len(a) == 0 {
		return nil
	}
	p.image.MoveTo(p.x(job, a[0].X()), p.y(job, a[0].Y()))
	for i := 1; i+2 < len(a); i += 3 {
		p.image.CubicTo(p.x(job, a[i].X()), p.y(job, a[i].Y()), p.x(job, a[i+1].X()), p.y(job, a[i+1].Y()), p.x(job, a[i+2].X()), p.y(job, a[i+2].Y()))
	}
	// Edges are curves, never areas, whatever the binding passes for filled.
	p.paint(job, filled && job.Object().Type() != gvc.EdgeObjectType)
	return nil
}

func (p *pngPainter) Polyline(_ context.Context, job *gvc.Job, a []*gvc.PointFloat) error {
	if len(a) == 0 {
		return nil
	}
	p.image.MoveTo(p.x(job, a[0].X()), p.y(job, a[0].Y()))
	for _, pt := range a[1:] {
		p.image.LineTo(p.x(job, pt.X()), p.y(job, pt.Y()))
	}
	p.paint(job, false)
	return nil
}

func (p *pngPainter) TextSpan(_ context.Context, job *gvc.Job, at *gvc.PointFloat, span *gvc.TextSpan) error {
	p.image.SetFontFace(p.fonts.face(span.Font().Size() * job.Zoom()))
	setColour(p.image, job.Object().PenColor())
	width, _ := p.image.MeasureString(span.Text())
	x := p.x(job, at.X())
	switch span.Just() {
	case 'r':
		x -= width
	case 'l':
	default: // 'n': centred
		x -= width / 2
	}
	p.image.DrawString(span.Text(), x, p.y(job, at.Y()))
	return nil
}
