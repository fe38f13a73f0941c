"""What a run shows: the history of its losses, the diagnoses, the summary, the console and the figures."""
