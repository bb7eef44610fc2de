//go:build unix

package zonedir

import (
	"os"
	"syscall"
)

// openNoBlock opens path for reading without blocking (a FIFO swapped in
// since the probe opens at once and is then refused) and without following
// a symlink swapped in.
func openNoBlock(path string) (*os.File, error) {
	return os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
}
