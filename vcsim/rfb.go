package main

// RFB 3.8 (the VNC protocol, RFC 6143) over a WebSocket, as ESXi's WebMKS endpoint speaks it
// to a client that asks for the "binary" subprotocol: the RFB byte stream is carried in binary
// WebSocket messages, split wherever the sender likes. Security type None only (the ticket
// in the URL authenticated the connection); Raw encoding; updates of the lines that changed.

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"image"
	"io"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

const (
	powerPollInterval = 200 * time.Millisecond
	writeTimeout      = 10 * time.Second
	maxCutText        = 1 << 20
	maxMessage        = 64 << 10
)

// pixelFormat is RFB's PIXEL_FORMAT; true colour only (every client this serves uses it).
type pixelFormat struct {
	bitsPerPixel, depth, bigEndian, trueColour uint8
	redMax, greenMax, blueMax                  uint16
	redShift, greenShift, blueShift            uint8
}

var defaultPixelFormat = pixelFormat{32, 24, 0, 1, 255, 255, 255, 16, 8, 0}

func (pf pixelFormat) bytes() []byte {
	b := []byte{pf.bitsPerPixel, pf.depth, pf.bigEndian, pf.trueColour, 0, 0, 0, 0, 0, 0, pf.redShift, pf.greenShift, pf.blueShift, 0, 0, 0}
	binary.BigEndian.PutUint16(b[4:], pf.redMax)
	binary.BigEndian.PutUint16(b[6:], pf.greenMax)
	binary.BigEndian.PutUint16(b[8:], pf.blueMax)
	return b
}

func parsePixelFormat(b []byte) pixelFormat {
	return pixelFormat{
		bitsPerPixel: b[0], depth: b[1], bigEndian: b[2], trueColour: b[3],
		redMax: binary.BigEndian.Uint16(b[4:]), greenMax: binary.BigEndian.Uint16(b[6:]), blueMax: binary.BigEndian.Uint16(b[8:]),
		redShift: b[10], greenShift: b[11], blueShift: b[12],
	}
}

// wsReader reads the RFB byte stream out of consecutive WebSocket messages.
type wsReader struct {
	conn    *websocket.Conn
	current io.Reader
}

func (r *wsReader) Read(p []byte) (int, error) {
	for {
		if r.current == nil {
			_, next, err := r.conn.NextReader()
			if err != nil {
				return 0, err
			}
			r.current = next
		}
		n, err := r.current.Read(p)
		if err == io.EOF {
			r.current = nil
			if n > 0 {
				return n, nil
			}
			continue
		}
		return n, err
	}
}

// rfbSession is one console connection.
type rfbSession struct {
	conn      *websocket.Conn
	screen    *screen
	poweredOn func() bool
	writeMu   sync.Mutex

	mu        sync.Mutex
	format    pixelFormat
	requested bool
	full      bool
	wake      chan struct{}
}

// write sends bytes of the RFB stream, in WebSocket messages of at most maxMessage bytes (a
// whole screen is over a megabyte; RFB does not care where the messages split).
func (c *rfbSession) write(stream []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	for len(stream) > 0 {
		n := len(stream)
		if n > maxMessage {
			n = maxMessage
		}
		_ = c.conn.SetWriteDeadline(time.Now().Add(writeTimeout))
		if err := c.conn.WriteMessage(websocket.BinaryMessage, stream[:n]); err != nil {
			return err
		}
		stream = stream[n:]
	}
	return nil
}

func (c *rfbSession) close(code int, reason string) {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	_ = c.conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
}

func (c *rfbSession) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func serveRFB(conn *websocket.Conn, s *screen, poweredOn func() bool) {
	c := &rfbSession{conn: conn, screen: s, poweredOn: poweredOn, format: defaultPixelFormat, wake: make(chan struct{}, 1)}
	in := bufio.NewReader(&wsReader{conn: conn})
	if !c.handshake(in) {
		return
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.readMessages(in)
	}()
	c.sendUpdates(done)
}

func (c *rfbSession) handshake(in *bufio.Reader) bool {
	if c.write([]byte("RFB 003.008\n")) != nil {
		return false
	}
	version := make([]byte, 12)
	if _, err := io.ReadFull(in, version); err != nil || !bytes.HasPrefix(version, []byte("RFB 003.")) {
		return false
	}
	if version[10] < '7' { // 3.3: the server picks the security type
		if c.write([]byte{0, 0, 0, 1}) != nil {
			return false
		}
	} else {
		if c.write([]byte{1, 1}) != nil { // one type: None
			return false
		}
		choice, err := in.ReadByte()
		if err != nil || choice != 1 {
			return false
		}
		if version[10] >= '8' && c.write([]byte{0, 0, 0, 0}) != nil { // SecurityResult OK
			return false
		}
	}
	if _, err := in.ReadByte(); err != nil { // ClientInit (shared flag): every connection is shared
		return false
	}
	name := []byte(c.screen.state().Name)
	init := make([]byte, 4, 24+len(name))
	binary.BigEndian.PutUint16(init[0:], screenWidth)
	binary.BigEndian.PutUint16(init[2:], screenHeight)
	init = append(init, defaultPixelFormat.bytes()...)
	init = binary.BigEndian.AppendUint32(init, uint32(len(name)))
	init = append(init, name...)
	return c.write(init) == nil
}

// readMessages applies the client's messages until it goes away or breaks the protocol.
func (c *rfbSession) readMessages(in *bufio.Reader) {
	for {
		kind, err := in.ReadByte()
		if err != nil {
			return
		}
		switch kind {
		case 0: // SetPixelFormat
			b := make([]byte, 19)
			if _, err := io.ReadFull(in, b); err != nil {
				return
			}
			format := parsePixelFormat(b[3:])
			if format.trueColour == 0 || (format.bitsPerPixel != 8 && format.bitsPerPixel != 16 && format.bitsPerPixel != 32) {
				return
			}
			c.mu.Lock()
			c.format, c.full = format, true
			c.mu.Unlock()
		case 2: // SetEncodings: Raw is always allowed, so the list changes nothing here
			b := make([]byte, 3)
			if _, err := io.ReadFull(in, b); err != nil {
				return
			}
			if _, err := in.Discard(4 * int(binary.BigEndian.Uint16(b[1:]))); err != nil {
				return
			}
		case 3: // FramebufferUpdateRequest
			b := make([]byte, 9)
			if _, err := io.ReadFull(in, b); err != nil {
				return
			}
			c.mu.Lock()
			c.requested = true
			c.full = c.full || b[0] == 0
			c.mu.Unlock()
			c.signal()
		case 4: // KeyEvent
			b := make([]byte, 7)
			if _, err := io.ReadFull(in, b); err != nil {
				return
			}
			c.screen.key(b[0] != 0, binary.BigEndian.Uint32(b[3:]))
		case 5: // PointerEvent
			if _, err := in.Discard(5); err != nil {
				return
			}
			c.screen.pointer()
		case 6: // ClientCutText (a negative length is the extended form; its size is the absolute value)
			b := make([]byte, 7)
			if _, err := io.ReadFull(in, b); err != nil {
				return
			}
			length := int64(int32(binary.BigEndian.Uint32(b[3:])))
			if length < 0 {
				length = -length
			}
			if length > maxCutText {
				return
			}
			if _, err := in.Discard(int(length)); err != nil {
				return
			}
		default:
			return // a message this server does not know: the stream cannot be followed further
		}
	}
}

// sendUpdates answers update requests: the whole screen when asked for it, otherwise the
// lines that changed since the last update, waiting for a change when there is none.
func (c *rfbSession) sendUpdates(done <-chan struct{}) {
	var shown *image.RGBA
	poll := time.NewTicker(powerPollInterval)
	defer poll.Stop()
	for {
		if !c.poweredOn() {
			c.close(websocket.CloseNormalClosure, "The virtual machine powered off.")
			return
		}
		// Taken before the picture is drawn: a change made while it is drawn and compared
		// must wake the wait below, not be missed until the next tick.
		changed, tick := c.screen.waitChange()
		c.mu.Lock()
		requested, full, format := c.requested, c.full, c.format
		c.mu.Unlock()
		if requested {
			picture := c.screen.render(true) // only a powered-on VM has a console connection
			var rects []image.Rectangle
			if full || shown == nil {
				rects = []image.Rectangle{picture.Bounds()}
			} else {
				rects = changedBands(shown, picture)
			}
			if len(rects) > 0 {
				c.mu.Lock()
				c.requested, c.full = false, false
				c.mu.Unlock()
				if c.write(encodeUpdate(picture, rects, format)) != nil {
					return
				}
				shown = picture
				continue
			}
		}
		select {
		case <-done:
			return
		case <-c.wake:
		case <-changed:
		case <-tick:
		case <-poll.C:
		}
	}
}

// changedBands are the horizontal bands (one text line high) that differ between two pictures.
func changedBands(before, after *image.RGBA) []image.Rectangle {
	var rects []image.Rectangle
	rowBytes := screenWidth * 4
	for top := 0; top < screenHeight; top += lineHeight {
		bottom := top + lineHeight
		if bottom > screenHeight {
			bottom = screenHeight
		}
		start, end := top*rowBytes, bottom*rowBytes
		if bytes.Equal(before.Pix[start:end], after.Pix[start:end]) {
			continue
		}
		if n := len(rects); n > 0 && rects[n-1].Max.Y == top {
			rects[n-1].Max.Y = bottom
		} else {
			rects = append(rects, image.Rect(0, top, screenWidth, bottom))
		}
	}
	return rects
}

// encodeUpdate is a FramebufferUpdate of the rectangles, Raw-encoded in the client's format.
func encodeUpdate(picture *image.RGBA, rects []image.Rectangle, format pixelFormat) []byte {
	bytesPerPixel := int(format.bitsPerPixel) / 8
	size := 4
	for _, r := range rects {
		size += 12 + r.Dx()*r.Dy()*bytesPerPixel
	}
	out := make([]byte, 0, size)
	out = append(out, 0, 0)
	out = binary.BigEndian.AppendUint16(out, uint16(len(rects)))
	for _, r := range rects {
		out = binary.BigEndian.AppendUint16(out, uint16(r.Min.X))
		out = binary.BigEndian.AppendUint16(out, uint16(r.Min.Y))
		out = binary.BigEndian.AppendUint16(out, uint16(r.Dx()))
		out = binary.BigEndian.AppendUint16(out, uint16(r.Dy()))
		out = binary.BigEndian.AppendUint32(out, 0) // Raw
		for y := r.Min.Y; y < r.Max.Y; y++ {
			row := picture.Pix[y*picture.Stride:]
			for x := r.Min.X; x < r.Max.X; x++ {
				p := row[x*4:]
				value := uint32(p[0])*uint32(format.redMax)/255<<format.redShift |
					uint32(p[1])*uint32(format.greenMax)/255<<format.greenShift |
					uint32(p[2])*uint32(format.blueMax)/255<<format.blueShift
				out = appendPixel(out, value, bytesPerPixel, format.bigEndian != 0)
			}
		}
	}
	return out
}

func appendPixel(out []byte, value uint32, size int, bigEndian bool) []byte {
	switch {
	case size == 1:
		return append(out, byte(value))
	case size == 2 && bigEndian:
		return binary.BigEndian.AppendUint16(out, uint16(value))
	case size == 2:
		return binary.LittleEndian.AppendUint16(out, uint16(value))
	case bigEndian:
		return binary.BigEndian.AppendUint32(out, value)
	default:
		return binary.LittleEndian.AppendUint32(out, value)
	}
}
