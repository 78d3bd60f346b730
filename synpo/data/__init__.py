"""Data written for this project: the demo seed set and the demo keyword corpus."""
