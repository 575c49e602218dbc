package store

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// MinFreeSpace is the free space the store directory needs at start.
// Badger maps its memtables and value log into memory as sparse files; on
// a full disk it would open fine and then die of SIGBUS at the first write,
// so a full disk is refused up front with a message that says so.
const MinFreeSpace = 64 << 20

func checkSpace(path string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(path, &st); err != nil {
		return fmt.Errorf("open store: statfs %s: %w", path, err)
	}
	free := uint64(st.Bavail) * uint64(st.Bsize)
	if free < MinFreeSpace {
		return fmt.Errorf("open store: only %d KiB free on the device of %s; pollrelay needs at least %d MiB: no space left on device",
			free>>10, path, MinFreeSpace>>20)
	}
	return nil
}
