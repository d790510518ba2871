"""What counts as training state.

Three families are never captured as state: code (functions, classes, modules...), which the replayed script
rebuilds itself; I/O companions (loggers, progress bars, metric writers, flortrace's own objects), whose
effects are outside the process; and system resources (open files, sockets, locks, threads, processes,
generators and iterators), whose state lives outside the object. Inside a captured object the first two are
kept by name and left alone on restore, while a resource makes the capture fail (`Unsupported`): restoring
the rest around a file position or an iterator's cursor would be silently wrong.

DataLoaders, Datasets and Samplers are state only through the random generators they hold (a DataLoader's
`generator=`, a dataset's `self.rng`); their data does not change and is never copied.
"""

from __future__ import annotations

import functools
import io
import sys
import types
import weakref

from flortrace import frameworks
from flortrace.state import torchstate
from flortrace.state.base import SCALARS

_CODE_TYPES = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.MethodWrapperType,
    types.WrapperDescriptorType,
    types.MethodDescriptorType,
    types.ClassMethodDescriptorType,
    types.GetSetDescriptorType,
    types.MemberDescriptorType,
    types.CodeType,
    types.FrameType,
    types.TracebackType,
    types.CellType,
    property,
    classmethod,
    staticmethod,
    functools.partial,
    type(functools.lru_cache(None)(len)),
    weakref.ref,
    weakref.ProxyType,
    weakref.CallableProxyType,
)

_PROXIES = (weakref.ProxyType, weakref.CallableProxyType)  # forward __next__ to what they refer to

_IGNORED_MODULES = (
    "logging",
    "tqdm",
    "torch.utils.tensorboard",
    "tensorboardX",
    "wandb",
    "mlflow",
    "rich",
    "pdb",
    "bdb",
    "flortrace",
)

_RESOURCE_MODULES = {
    "_thread": "lock",
    "threading": "thread or lock",
    "multiprocessing": "process or lock",
    "concurrent": "executor",
    "subprocess": "process",
    "socket": "socket",
    "ssl": "socket",
    "selectors": "selector",
    "asyncio": "event loop",
    "queue": "queue holding locks",
    "mmap": "memory map",
    "sqlite3": "database connection",
    "torch.cuda.streams": "CUDA stream or event",
}


def _type_module(obj) -> str:
    return getattr(type(obj), "__module__", None) or ""


def _under(module: str, prefixes) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def is_code(obj) -> bool:
    """Functions, classes, modules, methods, descriptors, frames: rebuilt by the script, never state."""
    return isinstance(obj, _CODE_TYPES)


def is_ignored(obj) -> bool:
    """Loggers, progress bars, metric writers, flortrace's own objects and file-backed arrays."""
    if _under(_type_module(obj), _IGNORED_MODULES) or _under(_type_module(obj), frameworks.FRESH_EACH_EPOCH):
        return True
    logging = sys.modules.get("logging")
    if logging is not None and isinstance(
        obj, (logging.Logger, logging.Handler, logging.LoggerAdapter, logging.Filter, logging.Formatter)
    ):
        return True
    np = sys.modules.get("numpy")
    return np is not None and isinstance(obj, np.memmap)


def resource_reason(obj) -> str | None:
    """Why `obj` is a system resource that cannot be captured, or None when it is not one."""
    if isinstance(obj, (types.GeneratorType, types.CoroutineType, types.AsyncGeneratorType)):
        return "generator"
    if isinstance(obj, io.IOBase):
        return None if isinstance(obj, (io.StringIO, io.BytesIO)) else "open file"
    module = _type_module(obj)
    reason = _RESOURCE_MODULES.get(module.partition(".")[0]) or _RESOURCE_MODULES.get(module)
    if reason is not None:
        return reason
    if (
        hasattr(type(obj), "__next__")
        and not isinstance(obj, _PROXIES)
        and not _under(module, frameworks.FRESH_EACH_EPOCH)
    ):
        return "iterator"
    return None


def is_state(obj) -> bool:
    """Whether `obj` is training state worth capturing (see the module docstring for what is not)."""
    if type(obj) in SCALARS:
        return True
    if is_code(obj) or is_ignored(obj) or resource_reason(obj) is not None:
        return False
    if "torch" in sys.modules and torchstate.is_data_object(obj):
        return bool(torchstate.rng_paths(obj))
    return True
