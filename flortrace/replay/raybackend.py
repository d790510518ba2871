"""Run replay segments as Ray tasks (``--backend ray``): on a cluster (``--address``) or a local Ray.

Each task runs the same worker command as the local backend, so nodes need the script, its data and the
store at the same paths (a shared filesystem). Failed segments are retried.
"""

from __future__ import annotations

import subprocess

from ..exceptions import RayUnavailable

RETRIES = 2
DIVERGED = 3  # a worker's "values differ" is an answer, not a failure to retry


class SegmentFailed(Exception):
    pass


def _run_segment(cmd, env):
    out = subprocess.run(cmd, env=env, capture_output=True, text=True)
    if out.returncode not in (0, DIVERGED):
        raise SegmentFailed(f"exit code {out.returncode}\n{out.stderr}")
    return out.returncode, out.stdout, out.stderr


def run_ray(commands, envs, settings, progress):
    """Run ``commands`` as Ray tasks; returns [(returncode, stdout, stderr)] in order."""
    try:
        import ray
    except ImportError:
        raise RayUnavailable("--backend ray needs Ray: pip install 'flortrace[ray]'") from None
    address = settings.address
    started_here = not ray.is_initialized()
    if started_here:
        options = dict(
            address=address, include_dashboard=False, log_to_driver=False, ignore_reinit_error=True
        )
        if address is None:
            options["num_cpus"] = max(len(commands), 1)
        ray.init(**options)
    try:
        task = ray.remote(max_retries=RETRIES, retry_exceptions=[SegmentFailed])(_run_segment)
        refs = [task.remote(c, e) for c, e in zip(commands, envs, strict=True)]
        index = {ref: i for i, ref in enumerate(refs)}
        results = [None] * len(refs)
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            i = index[ready[0]]
            try:
                results[i] = ray.get(ready[0])
            except Exception as exc:  # retries exhausted: report the segment, keep the others
                results[i] = (
                    1,
                    "",
                    f"flortrace: segment {i + 1} failed on Ray after {RETRIES} retries: {exc}\n",
                )
            progress(i)
        return results
    finally:
        if started_here:
            ray.shutdown()
