package main

// A simulated VM's console screen: what its WebMKS connections show, and the input they sent.

import (
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"strings"
	"sync"
	"time"

	"github.com/vmware/govmomi/vim25/types"
	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

const (
	screenWidth  = 720 // a text-mode console, as a freshly booted ESXi shows
	screenHeight = 400
	lineHeight   = 16
	marginX      = 8
	keptRunes    = 8192 // typed text kept per VM; the screen shows its last lines
)

var (
	background = color.RGBA{0x1b, 0x2a, 0x3a, 0xff}
	headerInk  = color.RGBA{0xff, 0xd4, 0x4d, 0xff}
	textInk    = color.RGBA{0xf2, 0xf2, 0xf2, 0xff}
)

// Key symbols (X11 keysymdef.h) the screen understands.
const (
	keyBackSpace = 0xff08
	keyTab       = 0xff09
	keyReturn    = 0xff0d
	keyKPEnter   = 0xff8d
	keyDelete    = 0xffff
	keyKPDelete  = 0xff9f
	keyControlL  = 0xffe3
	keyControlR  = 0xffe4
	keyAltL      = 0xffe9
	keyAltR      = 0xffea
)

type screenState struct {
	Name          string `json:"name"`
	Text          string `json:"text"`
	CtrlAltDel    int    `json:"ctrlAltDel"`
	KeyEvents     int    `json:"keyEvents"`
	PointerEvents int    `json:"pointerEvents"`
	Sessions      int    `json:"sessions"`
	Connections   int    `json:"connections"`
}

type screen struct {
	ref   types.ManagedObjectReference
	tick  time.Duration
	start time.Time

	mu          sync.Mutex
	info        screenState
	text        []rune
	modifiers   map[uint32]bool
	changed     chan struct{} // closed and replaced whenever the picture changes
	onLine      func(string)  // runs a line when Return is pressed (the guest's shell)
	onInterrupt func()        // Ctrl-C: stops the line running
}

func newScreen(ref types.ManagedObjectReference, tick time.Duration) *screen {
	return &screen{ref: ref, tick: tick, start: time.Now(), modifiers: map[uint32]bool{}, changed: make(chan struct{})}
}

// changeLocked wakes every connection waiting for a change; s.mu is held.
func (s *screen) changeLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

func (s *screen) setName(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.info.Name != name {
		s.info.Name = name
		s.changeLocked()
	}
}

func (s *screen) connected(delta int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info.Sessions += delta
	if delta > 0 {
		s.info.Connections += delta
	}
}

func (s *screen) state() screenState {
	s.mu.Lock()
	defer s.mu.Unlock()
	state := s.info
	state.Text = string(s.text)
	return state
}

// waitChange is closed at the screen's next change, or at the next tick of its uptime line.
func (s *screen) waitChange() (<-chan struct{}, <-chan time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	elapsed := time.Since(s.start)
	next := s.tick - elapsed%s.tick
	return s.changed, time.After(next)
}

func (s *screen) pointer() {
	s.mu.Lock()
	s.info.PointerEvents++
	s.mu.Unlock()
}

// key applies an RFB KeyEvent: printable keys type, Return starts a line, BackSpace erases,
// and Delete with Control and Alt held counts as Ctrl-Alt-Del.
func (s *screen) key(down bool, sym uint32) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info.KeyEvents++
	switch sym {
	case keyControlL, keyControlR, keyAltL, keyAltR:
		s.modifiers[sym] = down
		return
	}
	if !down {
		return
	}
	control := s.modifiers[keyControlL] || s.modifiers[keyControlR]
	alt := s.modifiers[keyAltL] || s.modifiers[keyAltR]
	switch {
	case (sym == keyDelete || sym == keyKPDelete) && control && alt:
		s.info.CtrlAltDel++
	case control && !alt && (sym == 'c' || sym == 'C'):
		s.text = append(s.text, '^', 'C', '\n')
		if s.onInterrupt != nil {
			s.onInterrupt()
		}
	case control || alt:
		return // shortcuts do not type
	case sym == keyReturn || sym == keyKPEnter:
		line := s.text
		if i := lastIndex(line, '\n'); i >= 0 {
			line = line[i+1:]
		}
		s.text = append(s.text, '\n')
		if s.onLine != nil && strings.TrimSpace(string(line)) != "" {
			s.onLine(string(line))
		}
	case sym == keyTab:
		s.text = append(s.text, ' ')
	case sym == keyBackSpace:
		if len(s.text) > 0 {
			s.text = s.text[:len(s.text)-1]
		}
	case sym >= 0x20 && sym <= 0x7e, sym >= 0xa0 && sym <= 0xff:
		s.text = append(s.text, rune(sym))
	case sym >= 0x01000100 && sym <= 0x0110ffff: // Unicode keysyms
		s.text = append(s.text, rune(sym-0x01000000))
	default:
		return
	}
	if len(s.text) > keptRunes {
		s.text = s.text[len(s.text)-keptRunes:]
	}
	s.changeLocked()
}

func lastIndex(text []rune, r rune) int {
	for i := len(text) - 1; i >= 0; i-- {
		if text[i] == r {
			return i
		}
	}
	return -1
}

// write shows a program's output on the screen (the console's shell).
func (s *screen) write(output string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.text = append(s.text, []rune(output)...)
	if len(s.text) > keptRunes {
		s.text = s.text[len(s.text)-keptRunes:]
	}
	s.changeLocked()
}

// render draws the screen as it is now.
func (s *screen) render(poweredOn bool) *image.RGBA {
	s.mu.Lock()
	name, text, ctrlAltDel := s.info.Name, string(s.text), s.info.CtrlAltDel
	uptime := time.Since(s.start).Truncate(s.tick)
	s.mu.Unlock()

	picture := image.NewRGBA(image.Rect(0, 0, screenWidth, screenHeight))
	draw.Draw(picture, picture.Bounds(), &image.Uniform{background}, image.Point{}, draw.Src)
	power := "powered off"
	if poweredOn {
		power = "powered on"
	}
	header := []string{
		name,
		fmt.Sprintf("Power: %s", power),
		fmt.Sprintf("Uptime: %s", uptime),
		fmt.Sprintf("Ctrl-Alt-Del received: %d", ctrlAltDel),
	}
	for i, line := range header {
		drawText(picture, i, line, headerInk)
	}
	columns := (screenWidth - 2*marginX) / basicfont.Face7x13.Advance
	rows := screenHeight/lineHeight - len(header) - 1
	var lines []string
	for _, paragraph := range strings.Split(text+"_", "\n") {
		runes := []rune(paragraph)
		for len(runes) > columns {
			lines = append(lines, string(runes[:columns]))
			runes = runes[columns:]
		}
		lines = append(lines, string(runes))
	}
	if len(lines) > rows {
		lines = lines[len(lines)-rows:]
	}
	for i, line := range lines {
		drawText(picture, len(header)+1+i, line, textInk)
	}
	return picture
}

func drawText(picture *image.RGBA, row int, text string, ink color.RGBA) {
	drawer := font.Drawer{
		Dst:  picture,
		Src:  &image.Uniform{ink},
		Face: basicfont.Face7x13,
		Dot:  fixed.P(marginX, row*lineHeight+lineHeight-3),
	}
	drawer.DrawString(text)
}
