"""Data drift against the replaced model's training data: the comparison, the MLMD lineage to that data, the gate."""
