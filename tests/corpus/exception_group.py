# exit: 1
"""An ExceptionGroup (Python 3.11+) escaping a loop; on 3.10 a plain exception from the same place."""

import sys


def validate(batches):
    errors = []
    for i, batch in enumerate(batches):
        for x in batch:
            if x < 0:
                errors.append(ValueError(f"negative value {x} in batch {i}"))
                break
    return errors


errors = validate([[1, 2], [-3], [4, -5, -6]])
print("errors found:", len(errors))
if sys.version_info >= (3, 11):
    raise ExceptionGroup("validation failed", errors)
raise errors[0]
