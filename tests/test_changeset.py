"""Capturing and restoring a frame's named state as one payload keeps the aliases between its names."""

import sys

from flortrace.runtime import changeset


def module_frame(namespace):
    """A frame whose names are ``namespace``, as the main loop's frame of a script is."""
    exec("import sys\n_frame = sys._getframe()", namespace)
    return namespace.pop("_frame")


def test_a_name_bound_to_an_element_of_a_captured_list_restores_as_that_element():
    """A loop variable bound to a row of a list (``for row in weights``) is captured before or after the
    list; on replay it may be bound to another row. Restoring must not make two rows one object."""
    weights = [[float(i)] * 3 for i in range(4)]
    recorded = {"row": weights[1], "weights": weights}
    for order in (["row", "weights"], ["weights", "row"]):
        payload, problems = changeset.capture({("main", "local", n): recorded[n] for n in order})
        assert not problems
        live_weights = [[-1.0] * 3 for _ in range(4)]
        namespace = {"weights": live_weights, "row": live_weights[3]}  # the loop ended on another row
        changeset.restore(payload, {"main": module_frame(namespace)})
        assert namespace["weights"] is live_weights  # restored in place
        assert [r[0] for r in live_weights] == [0.0, 1.0, 2.0, 3.0], order
        assert len({id(r) for r in live_weights}) == 4, order
        assert namespace["row"] is live_weights[1], order


def test_objects_two_names_share_are_restored_once():
    shared = [1, 2, 3]
    payload, _ = changeset.capture({("main", "local", "a"): shared, ("main", "local", "b"): shared})
    live = [0]
    namespace = {"a": live, "b": [9]}
    changeset.restore(payload, {"main": module_frame(namespace)})
    assert namespace["a"] is live and namespace["b"] is live and live == [1, 2, 3]
    assert sys.getrefcount(live) > 2
