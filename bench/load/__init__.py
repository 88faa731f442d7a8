"""reliability.md T4: the load bench (run.py), its open-loop generator and its report."""
