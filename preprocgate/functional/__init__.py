"""Pure arithmetic of the checks: no I/O, no configuration, easy to test against hand-computed values."""
