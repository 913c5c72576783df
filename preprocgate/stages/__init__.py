"""The stages a gate runs, in the order the engine calls them: parity probe, speed probe, detection (dataset →
adapter → dumps → evaluation → bootstrap → noise floor → diff, with the stored baseline), and the comparisons
with the spec's thresholds. Each returns its part of the result; the maths is in functional/."""
