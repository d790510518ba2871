"""What the patched hooks call: the loop stack, the recorder, the replayer and the adaptive policy."""
