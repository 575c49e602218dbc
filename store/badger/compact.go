package badger

import "fmt"

// Flatten compacts every level of the database into one and returns when
// it is done. Loading a large database at once leaves Badger compacting
// for a while after it reopens; a measurement of the settled database
// (bench, BenchmarkTrackedMillion) flattens it first so the compactions
// are not mistaken for the work measured.
func (s *Store) Flatten() error {
	if err := s.db.Flatten(2); err != nil {
		return fmt.Errorf("flatten store: %w", err)
	}
	return nil
}
