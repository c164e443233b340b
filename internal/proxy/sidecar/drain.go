package sidecar

import (
	"context"
	"net"
	"sync"
	"time"
)

// connSet tracks open client connections so a drain can wait for them and,
// past its deadline, close what is left.
type connSet struct {
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// add registers c; false once the set is closed (the proxy is draining).
func (s *connSet) add(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	if s.conns == nil {
		s.conns = map[net.Conn]struct{}{}
	}
	s.conns[c] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *connSet) remove(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.wg.Done()
}

// closeAll refuses new connections and closes the open ones.
func (s *connSet) closeAll() {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
}

// wait waits for every tracked connection to end, or ctx.
func (s *connSet) wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.closeAll()
		<-done
		return ctx.Err()
	}
}

// drain stops accepting, lets in-flight requests finish within timeout, then
// closes whatever is still open.
func (p *Proxy) drain(timeout time.Duration) {
	p.draining.Store(true)
	p.closeListeners()
	p.mu.Lock()
	servers := p.servers
	p.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var wg sync.WaitGroup
	for _, d := range []direction{inbound, outbound} {
		srv := servers[d]
		if srv == nil {
			continue // no config ever arrived
		}
		wg.Go(func() {
			// Shutdown closes the server's listener and idle connections,
			// sends GOAWAY on HTTP/2 connections and waits for requests in
			// flight.
			if err := srv.Shutdown(ctx); err != nil {
				srv.Close()
			}
		})
	}
	if err := p.conns.wait(ctx); err != nil {
		p.log.Warn("drain deadline passed; closing remaining connections", "timeout", timeout)
	}
	wg.Wait()
	// Tunnels (WebSocket, CONNECT) are invisible to the HTTP servers'
	// shutdown: give them the rest of the drain time too.
	tunnelsDone := make(chan struct{})
	go func() { p.tunnels.Wait(); close(tunnelsDone) }()
	select {
	case <-tunnelsDone:
	case <-ctx.Done():
		p.log.Warn("drain deadline passed with tunnels open; they end with the proxy", "timeout", timeout)
	}
	p.up.CloseIdle()
}
