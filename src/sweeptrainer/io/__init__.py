"""Everything a run writes to disk: file names, atomic writes, status."""
