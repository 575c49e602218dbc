//go:build !race

package storetest

// largeBatch is many times the groups one transaction of Badger takes
// with pollrelay's options (a few thousand of these), so the batch spans
// several.
const largeBatch = 50_000
