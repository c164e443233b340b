package demo

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"time"
)

// inventoryIdleTimeout closes an inventory connection that sends nothing for
// this long.
const inventoryIdleTimeout = 30 * time.Second

// Stock returns the deterministic stock count of item, in [0, 100).
func Stock(item string) int {
	h := fnv.New32a()
	_, _ = io.WriteString(h, item)
	return int(h.Sum32() % 100)
}

// inventoryAnswer returns the answer line (with its newline) to one request
// line (without its newline).
func inventoryAnswer(line string) string {
	line = strings.TrimSuffix(line, "\r")
	cmd, item, _ := strings.Cut(line, " ")
	switch {
	case cmd != "STOCK":
		return "ERR unknown command\n"
	case strings.TrimSpace(item) == "":
		return "ERR missing item\n"
	default:
		item = strings.TrimSpace(item)
		return fmt.Sprintf("%s %d\n", item, Stock(item))
	}
}

// Inventory serves the inventory line protocol on ln until ctx is done,
// then closes the listener and every open connection and returns nil. It
// takes ownership of ln.
func Inventory(ctx context.Context, ln net.Listener, log *slog.Logger) error {
	log = orDefault(log).With("service", "inventory")
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		conns  = make(map[net.Conn]struct{})
		closed bool
	)
	closeAll := func() {
		_ = ln.Close()
		mu.Lock()
		defer mu.Unlock()
		closed = true
		for c := range conns {
			_ = c.Close()
		}
	}
	stop := context.AfterFunc(ctx, closeAll)
	defer stop()
	log.Info("serving TCP", "addr", ln.Addr().String())

	for {
		c, err := ln.Accept()
		if err != nil {
			closeAll()
			wg.Wait()
			if ctx.Err() != nil {
				log.Info("stopped")
				return nil
			}
			return fmt.Errorf("inventory: accept: %w", err)
		}
		mu.Lock()
		if closed {
			mu.Unlock()
			_ = c.Close()
			continue
		}
		conns[c] = struct{}{}
		mu.Unlock()

		wg.Add(1)
		go func() {
			defer wg.Done()
			serveInventoryConn(c, log)
			mu.Lock()
			delete(conns, c)
			mu.Unlock()
			_ = c.Close()
		}()
	}
}

func serveInventoryConn(c net.Conn, log *slog.Logger) {
	r := bufio.NewScanner(c)
	w := bufio.NewWriter(c)
	for {
		_ = c.SetReadDeadline(time.Now().Add(inventoryIdleTimeout))
		if !r.Scan() {
			if err := r.Err(); err != nil && !errors.Is(err, net.ErrClosed) {
				log.Debug("connection ended", "remote", c.RemoteAddr().String(), "err", err)
			}
			return
		}
		if _, err := w.WriteString(inventoryAnswer(r.Text())); err != nil {
			return
		}
		if err := w.Flush(); err != nil {
			log.Debug("write failed", "remote", c.RemoteAddr().String(), "err", err)
			return
		}
	}
}
