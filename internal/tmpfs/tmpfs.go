// Package tmpfs gives tests a small file system of their own to fill up:
// how pollrelay behaves on a full disk can only be seen on a device that
// fills, and a tmpfs is one that fills fast and goes away cleanly.
package tmpfs

import (
	"os"
	"os/exec"
	"sync"
	"testing"

	"github.com/pollrelay/pollrelay/internal/testenv"
	"golang.org/x/sys/unix"
)

// Mount mounts a tmpfs of size (as mount's size= option: "96m", "64k") on
// a new temporary directory and returns it; it is unmounted at cleanup,
// after the cleanups the test registers later. Mounting needs root: where
// it fails the test is skipped, except in CI, which runs as root, where it
// fails.
func Mount(t testing.TB, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "cannot mount a %s tmpfs here: %v %s", size, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	return dir
}

// Fill writes a filler file into dir until its device has about target
// bytes free, and returns what removes it (also done at cleanup).
func Fill(t testing.TB, dir string, target uint64) (remove func()) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	free := st.Bavail * uint64(st.Bsize)
	if free <= target {
		t.Fatalf("only %d bytes free, cannot fill to %d", free, target)
	}
	f, err := os.CreateTemp(dir, "filler")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 1<<20)
	for left := free - target; left > 0; {
		n := min(left, uint64(len(chunk)))
		if _, err := f.Write(chunk[:n]); err != nil {
			t.Fatalf("fill: %v", err)
		}
		left -= n
	}
	var once sync.Once
	remove = func() {
		once.Do(func() {
			if err := os.Remove(f.Name()); err != nil {
				t.Error(err)
			}
		})
	}
	t.Cleanup(remove)
	return remove
}

// ReadOnly makes dir read-only for new files from now on, as a device
// remounted read-only is: a read-only bind mount over it. (Remounting the
// device itself is refused while a process holds files on it open for
// writing, as a running store does.) It is undone at cleanup, before the
// cleanups registered earlier, such as Mount's unmount. Where mounting
// fails the test is skipped.
func ReadOnly(t testing.TB, dir string) {
	t.Helper()
	if out, err := exec.Command("mount", "--bind", dir, dir).CombinedOutput(); err != nil {
		t.Skipf("cannot bind-mount %s here: %v %s", dir, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", dir).Run() })
	if out, err := exec.Command("mount", "-o", "remount,ro,bind", dir).CombinedOutput(); err != nil {
		t.Skipf("cannot make %s read-only here: %v %s", dir, err, out)
	}
}
