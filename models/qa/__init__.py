"""Call-quality models: per rubric item the probability of a defect and the points it costs."""
