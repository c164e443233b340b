package admin

import "testing"

func TestServerTimeouts(t *testing.T) {
	srv := newServer(Options{})
	if srv.ReadHeaderTimeout <= 0 || srv.ReadHeaderTimeout > readTimeout {
		t.Errorf("ReadHeaderTimeout = %v: slowloris clients could hold connections", srv.ReadHeaderTimeout)
	}
	if srv.ReadTimeout <= 0 || srv.IdleTimeout <= 0 || srv.WriteTimeout <= 0 || srv.MaxHeaderBytes <= 0 {
		t.Errorf("server limits unset: %+v", srv)
	}
}
