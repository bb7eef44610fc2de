package main

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// configuredFormat is log.format once a config has been read (flags
// applied), so that a fatal error after that is written in the format the
// operator asked for.
var configuredFormat string

// fatalFormat is the format of a fatal error: the config's, else the
// --log-format flag or HYBRIDNS_LOG_FORMAT (a config that cannot be read
// still has its flag obeyed), else text.
func fatalFormat(args []string) string {
	if configuredFormat != "" {
		return configuredFormat
	}
	for i, a := range args {
		if a == "--" {
			break
		}
		if v, ok := strings.CutPrefix(a, "--log-format="); ok {
			return v
		}
		if (a == "--log-format" || a == "-log-format") && i+1 < len(args) {
			return args[i+1]
		}
	}
	return os.Getenv("HYBRIDNS_LOG_FORMAT")
}

// writeFatal reports the error that ends the process: one JSON log line
// (every problem of a joined error an element of "errors") or the text
// "hybridns: …".
func writeFatal(w io.Writer, err error, format string) {
	if format != "json" {
		fmt.Fprintln(w, "hybridns:", err)
		return
	}
	lines := strings.Split(err.Error(), "\n")
	attrs := []any{slog.String("err", lines[0])}
	if len(lines) > 1 {
		attrs = append(attrs, slog.Any("errors", lines))
	}
	slog.New(slog.NewJSONHandler(w, nil)).Error("hybridns stopped", attrs...)
}
