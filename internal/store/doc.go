// Package store owns meta.db, Berth's bbolt metadata file. Every other package
// reads and writes records through the typed collections here (Sandboxes,
// Containers, Images), each change inside one transaction that has committed
// before the method returns. Records carry a schema version so that a newer
// berthd can migrate what an older one wrote.
//
// store imports nothing from Berth but errdefs.
package store
