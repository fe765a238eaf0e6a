"""Small, checked source patches applied to FerretDB v1 before the local store is built.

FerretDB v1.24.2 (the last v1) has three defects that make an update-heavy workload on
SQLite unusable beyond a few hundred documents; four patches mend them (pushing `_id` down
to SQLite takes two: equality and `$in`). A fourth defect breaks compare-and-set: an update
matched its filter and wrote the document in two steps, so two updates of the same version
could both match; four more patches give each read-modify-write its own turn. The last one
stamps the build as patched. Each patch names what it fixes; each replacement must match
exactly, so a different FerretDB version fails the build loudly.
"""

from __future__ import annotations

from pathlib import Path

# What the patched build reports as its FerretDB version; store/server.py looks for the suffix.
PATCHED_VERSION = "v1.24.2-fulfillment-patched"

PATCHES: list[tuple[str, str, str, str]] = [
    (
        # Lookups and updates by _id used `->'$._id'` while the `_id_` index is built on
        # `->"_id"`; SQLite cannot match the two, so every update scanned the whole table.
        "internal/backends/sqlite/metadata/metadata.go",
        "IDColumn = DefaultColumn + \"->'$._id'\"",
        'IDColumn = DefaultColumn + "->\\"_id\\""',
        "use the _id index",
    ),
    (
        # Push down `_id` equality even when the filter has other conditions (the handler
        # still applies the whole filter), and `_id: {$in: [...]}` as `IN (...)`.
        "internal/backends/sqlite/collection.go",
        """	if params.Filter.Len() == 1 {
		v, _ := params.Filter.Get("_id")
		switch v.(type) {
		case string, types.ObjectID:
			whereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)
			args = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
		}
	}
""",
        """	if params.Filter.Len() >= 1 {
		v, _ := params.Filter.Get("_id")
		switch v := v.(type) {
		case string, types.ObjectID:
			whereClause = fmt.Sprintf(` WHERE %s = ?`, metadata.IDColumn)
			args = []any{string(must.NotFail(sjson.MarshalSingleValue(v)))}
		case *types.Document:
			whereClause, args = idInClause(v)
		}
	}
""",
        "push down _id",
    ),
    (
        "internal/backends/sqlite/collection.go",
        "// Query implements backends.Collection interface.\n",
        """// idInClause pushes `{$in: [ids]}` on _id down to SQLite; any other shape is left to the handler.
func idInClause(cond *types.Document) (string, []any) {
	if cond.Len() != 1 {
		return "", nil
	}
	in, err := cond.Get("$in")
	if err != nil {
		return "", nil
	}
	values, ok := in.(*types.Array)
	if !ok || values.Len() == 0 {
		return "", nil
	}
	marks := make([]string, 0, values.Len())
	args := make([]any, 0, values.Len())
	for i := 0; i < values.Len(); i++ {
		v := must.NotFail(values.Get(i))
		switch v.(type) {
		case string, types.ObjectID:
			marks = append(marks, "?")
			args = append(args, string(must.NotFail(sjson.MarshalSingleValue(v))))
		default:
			return "", nil
		}
	}
	return fmt.Sprintf(` WHERE %s IN (%s)`, metadata.IDColumn, strings.Join(marks, ", ")), args
}

// Query implements backends.Collection interface.
""",
        "push down _id $in",
    ),
    (
        # Each update statement's query iterator (and its SQLite connection) stayed open until
        # the whole command ended: ~100 statements exhausted the pool of 100 and hung forever.
        "internal/handler/msg_update.go",
        """		result, err := common.UpdateDocument(ctx, c, "update", iter, &u)
		if err != nil {
			return 0, 0, nil, lazyerrors.Error(err)
		}
""",
        """		result, err := common.UpdateDocument(ctx, c, "update", iter, &u)
		res.Iter.Close()
		if err != nil {
			return 0, 0, nil, lazyerrors.Error(err)
		}
""",
        "release connections per update",
    ),
    (
        # An update matched its filter on one read and wrote the document in another
        # transaction, by `_id` alone: two compare-and-set updates of the same version could
        # both match, and the last one won. One update's read and write now take one turn.
        "internal/handler/handler.go",
        "\twg       sync.WaitGroup\n",
        "\twg       sync.WaitGroup\n\n\t// One read-modify-write at a time (patched).\n\twriteTurn sync.Mutex\n",
        "a turn for each read-modify-write",
    ),
    (
        "internal/handler/msg_update.go",
        """		res, err := c.Query(ctx, &qp)
		if err != nil {
			return 0, 0, nil, lazyerrors.Error(err)
		}
""",
        """		// The filter is matched on this read and the document written below, by _id
		// alone: no other update may write in between.
		h.writeTurn.Lock()
		res, err := c.Query(ctx, &qp)
		if err != nil {
			h.writeTurn.Unlock()
			return 0, 0, nil, lazyerrors.Error(err)
		}
""",
        "take the turn for an update",
    ),
    (
        "internal/handler/msg_update.go",
        """		res.Iter.Close()
		if err != nil {
""",
        """		res.Iter.Close()
		h.writeTurn.Unlock()
		if err != nil {
""",
        "end the update's turn",
    ),
    (
        "internal/handler/msg_findandmodify.go",
        """	queryRes, err := c.Query(ctx, &qp)
""",
        """	h.writeTurn.Lock()
	defer h.writeTurn.Unlock()

	queryRes, err := c.Query(ctx, &qp)
""",
        "take the turn for a findAndModify",
    ),
    (
        # Say so in `buildInfo.ferretdbVersion`: with the connections released per update, the
        # worker may send large bulk writes (store/server.py), which an unpatched v1 deadlocks on.
        "build/version/version.go",
        "\t\tVersion:             unknown,",
        f'\t\tVersion:             "{PATCHED_VERSION}",',
        "stamp the version as patched",
    ),
]


def apply(root: Path) -> list[str]:
    """Patch the FerretDB source tree at `root`; return the names of the patches applied."""
    applied = []
    for relative, old, new, name in PATCHES:
        path = root / relative
        text = path.read_text()
        if old not in text:
            raise RuntimeError(f"FerretDB patch {name!r} does not apply to {relative}")
        path.write_text(text.replace(old, new, 1))
        applied.append(name)
    return applied
