//go:build race

package storetest

// largeBatch under the race detector, which makes Badger's writes about
// nine times slower: still several of its transactions.
const largeBatch = 15_000
