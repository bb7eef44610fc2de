package main

import (
	"errors"
	"log/slog"

	"hybridns/server"
)

// forwarderCloser is the forwarder as cmd wires it.
type forwarderCloser interface {
	server.Forwarder
	Close() error
}

// buildForwarder builds the forwarding path from cfg; nil when nothing is
// forwarded.
func buildForwarder(cfg *Config, log *slog.Logger) (forwarderCloser, error) {
	if len(cfg.Forward) == 0 && len(cfg.ForwardDefault) == 0 {
		return nil, nil
	}
	return nil, errors.New("forwarding: not wired yet")
}
