"""The alert stage: one path from a finding to a published alert (:mod:`.stage`), the
publisher and the retrain planner."""
