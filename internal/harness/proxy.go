package harness

import (
	"io"
	"net"
	"sync"
	"testing"
)

// Proxy forwards TCP connections on a loopback port to a target, and can
// cut them: a database that becomes unreachable and comes back, without
// stopping the server other tests share.
type Proxy struct {
	// Addr is host:port to connect to instead of the target.
	Addr   string
	target string
	ln     net.Listener

	mu    sync.Mutex
	cut   bool
	conns map[net.Conn]struct{}
	// ups are the connections to the target, which Partition leaves open.
	ups         map[net.Conn]struct{}
	partitioned bool
	wg          sync.WaitGroup
}

// NewProxy forwards a new loopback port to target until t ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{Addr: ln.Addr().String(), target: target, ln: ln, conns: map[net.Conn]struct{}{}, ups: map[net.Conn]struct{}{}}
	p.wg.Go(p.accept)
	t.Cleanup(func() {
		ln.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *Proxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.track(c) {
			p.wg.Go(func() { p.forward(c) })
		}
	}
}

func (p *Proxy) forward(c net.Conn) {
	defer p.drop(c)
	up, err := net.Dial("tcp", p.target)
	if err != nil {
		return
	}
	if !p.track(up) {
		return
	}
	p.mu.Lock()
	p.ups[up] = struct{}{}
	p.mu.Unlock()
	defer p.drop(up)
	done := make(chan struct{}, 2)
	// Either side ending ends both, unless partitioned: then the target's
	// side stays open, silent, until Cut.
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		p.mu.Lock()
		keep := p.partitioned
		p.mu.Unlock()
		if !keep {
			dst.Close()
			src.Close()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
}

// track keeps c to close at the next Cut, or closes it now while cut.
func (p *Proxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		c.Close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *Proxy) drop(c net.Conn) {
	c.Close()
	p.mu.Lock()
	delete(p.conns, c)
	delete(p.ups, c)
	p.mu.Unlock()
}

// Partition closes the clients' side of every connection and refuses new
// ones until Restore, but leaves the target's side open and silent: a
// network that fails without the server hearing of it, whose sessions
// live on there until it times them out.
func (p *Proxy) Partition() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.partitioned = true, true
	for c := range p.conns {
		if _, up := p.ups[c]; !up {
			c.Close()
		}
	}
}

// Cut closes every connection and refuses new ones until Restore.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.partitioned = true, false
	for c := range p.conns {
		c.Close()
	}
}

// Restore accepts connections again.
func (p *Proxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut, p.partitioned = false, false
}
