"""Replay: plan from the edit, and drive the replayer over the recorded run."""
