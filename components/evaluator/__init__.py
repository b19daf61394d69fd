"""TFX's Evaluator, judging against the last blessed model only when it solves the same task."""
