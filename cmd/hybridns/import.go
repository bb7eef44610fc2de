package main

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/urfave/cli/v2"

	"hybridns/r53"
)

// importCmd: `hybridns import --zone ID|NAME FILE [--dry-run]` applies a
// BIND zone file to a Route 53 hosted zone as the minimal diff, printing
// the plan first; with --dry-run it changes nothing.
func importCmd(c *cli.Context) error {
	// The flag parser stops at the file name: accept --dry-run after it too.
	dry := c.Bool("dry-run")
	var files []string
	for _, a := range c.Args().Slice() {
		switch {
		case a == "--dry-run" || a == "-dry-run":
			dry = true
		case strings.HasPrefix(a, "-") && a != "-":
			return fmt.Errorf("import: unknown option %s after the file (put options before it)", a)
		default:
			files = append(files, a)
		}
	}
	if len(files) != 1 {
		return errors.New("import: want one zone file: hybridns import --zone ID|NAME FILE [--dry-run]")
	}
	cfg, err := configFromCLI(c)
	if err != nil {
		return err
	}
	lc := cfg.Log
	if !c.IsSet("log-level") && lc.Level == "" {
		lc.Level = "warn" // the plan and the results are the output
	}
	log := newLogger(lc, nil)
	limiter := r53.NewLimiter(cfg.Route53.RPS, cfg.Route53.Burst)
	client, err := r53.NewClient(c.Context, r53.ClientOptions{Endpoint: cfg.Route53.Endpoint, RoleARN: cfg.Route53.RoleARN, Limiter: limiter})
	if err != nil {
		return err
	}
	in := os.Stdin
	if files[0] != "-" {
		if in, err = os.Open(files[0]); err != nil {
			return err
		}
		defer in.Close()
	}
	s, zone, err := r53.OpenZone(c.Context, client, c.String("zone"), log)
	if err != nil {
		return err
	}
	desired, notes, err := r53.ParseZoneFile(in, files[0], zone.Name, zone.ID)
	if err != nil {
		return err
	}
	plan, err := r53.PlanImport(zone.Name, zone.ID, zone.Sets, desired, notes)
	if err != nil {
		return err
	}
	w := c.App.Writer
	if err := plan.Write(w); err != nil {
		return err
	}
	switch {
	case dry:
		fmt.Fprintln(w, "dry run: nothing changed")
		return nil
	case plan.Changes() == 0:
		fmt.Fprintln(w, "nothing to change")
		return nil
	}
	results, err := s.Apply(c.Context, zone.ID, plan.Batches)
	for i, res := range results {
		fmt.Fprintf(w, "batch %d/%d accepted: change %s, %d changes\n", i+1, len(plan.Batches), res.ChangeID, res.Changes)
	}
	if err != nil {
		return fmt.Errorf("import into %s (%s): %d of %d batches applied; %w", zone.Name, zone.ID, len(results), len(plan.Batches), err)
	}
	fmt.Fprintf(w, "imported: %d changes in %d batches\n", plan.Changes(), len(plan.Batches))
	return nil
}
