"""The stages a gate runs, in order: probe (parity), speed, compare. Each is thin; the maths is in functional/."""
