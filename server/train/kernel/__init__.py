"""The dense families' C kernels (step.c, common.h beside this file): compiled on first use
with the machine's C compiler into a cache directory, then loaded with ctypes.

`library()` is the loaded library, or None where it cannot be had (no C compiler, a failed
build, a machine other than Linux/macOS) or is switched off (`PLAYGROUND_FAMILY_KERNEL=off`):
the families then take their torch path, which gives the same histories, slower. The build is
keyed by the sources, the flags, the compiler and the CPU (it is built for the CPU it runs on,
`-march=native`), so a cache shared between machines never loads a foreign build. The cache is
`PLAYGROUND_KERNEL_CACHE`, else `$XDG_CACHE_HOME/nn-playground/kernels`, else
`~/.cache/nn-playground/kernels`, else a temporary directory.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
SOURCES = ("step.c", "evaluate.c")
HEADERS = ("common.h",)
FLAGS = ("-O3", "-march=native", "-fPIC", "-shared", "-std=gnu11", "-pthread",
         # no errno and no traps: the math vectorizes; no fused multiply-adds: each product
         # rounds as torch's own does
         "-fno-math-errno", "-fno-trapping-math", "-ffp-contract=off")

_lock = threading.Lock()
_loaded: list = []  # [library or None] once tried
_configured: dict = {}  # what the server's settings said (`configure`), over the environment


def configure(settings) -> None:
    """Take the server's settings (family_kernel, family_threads, kernel_cache); the engine
    calls this. Only what differs from the defaults is kept, so that the environment still
    rules a process that never configured (tests, benches)."""
    if getattr(settings, "family_kernel", "auto") == "off":
        _configured["off"] = True
    if getattr(settings, "family_threads", None):
        _configured["threads"] = int(settings.family_threads)
    if getattr(settings, "kernel_cache", None):
        _configured["cache"] = str(settings.kernel_cache)


def enabled() -> bool:
    return not _configured.get("off") and os.environ.get(
        "PLAYGROUND_FAMILY_KERNEL", "auto").lower() not in ("off", "0", "false", "no")


def threads() -> int:
    """Threads the C steps may use: the setting (`PLAYGROUND_FAMILY_THREADS`), else the cores
    but one, at most 4 (one is left for the event loop and a browser on the same machine)."""
    if "threads" in _configured:
        return _configured["threads"]
    raw = os.environ.get("PLAYGROUND_FAMILY_THREADS", "")
    try:
        return max(1, min(16, int(raw)))
    except ValueError:
        return max(1, min(4, (os.cpu_count() or 1) - 1))


def library() -> ctypes.CDLL | None:
    """The kernels' library (built and loaded once per process), or None."""
    if not enabled():
        return None
    with _lock:
        if not _loaded:
            _loaded.append(_load())
        return _loaded[0]


def _compiler() -> str | None:
    for name in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if name and shutil.which(name):
            return name
    return None


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line
    except OSError:
        pass
    return platform.processor()


def _cache_dir() -> Path:
    configured = _configured.get("cache") or os.environ.get("PLAYGROUND_KERNEL_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "nn-playground" / "kernels"


def _load() -> ctypes.CDLL | None:
    if platform.system() not in ("Linux", "Darwin"):
        return None
    cc = _compiler()
    if cc is None:
        log.info("no C compiler: families take their torch path")
        return None
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.splitlines()[:1]
    except (OSError, subprocess.SubprocessError):
        return None
    digest = hashlib.sha256()
    for name in (*SOURCES, *HEADERS):
        digest.update((HERE / name).read_bytes())
    for part in (*FLAGS, *version, _cpu(), platform.machine()):
        digest.update(part.encode())
    name = f"family-{digest.hexdigest()[:20]}.so"
    for folder in (_cache_dir(), Path(tempfile.gettempdir()) / "nn-playground-kernels"):
        path = folder / name
        try:
            if not path.exists():
                _build(cc, path)
            lib = ctypes.CDLL(str(path))
        except (OSError, subprocess.SubprocessError) as error:
            log.warning("family kernel not built in %s (%s): trying elsewhere", folder, error)
            continue
        _declare(lib)
        return lib
    log.warning("family kernel could not be built: families take their torch path")
    return None


def _build(cc: str, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(suffix=".so", dir=path.parent)
    os.close(handle)
    try:
        done = subprocess.run([cc, *FLAGS, "-o", tmp, *(str(HERE / s) for s in SOURCES), "-lm"],
                              capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise OSError(done.stderr.strip()[-2000:] or f"{cc} exited {done.returncode}")
        os.replace(tmp, path)  # atomic: a process building at the same time loses nothing
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _declare(lib: ctypes.CDLL) -> None:
    lib.work_floats.restype = ctypes.c_size_t
    lib.work_floats.argtypes = [ctypes.c_void_p]
    lib.family_steps.restype = None
    lib.family_steps.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p,
                                 ctypes.c_int32, ctypes.c_int32]
    lib.family_evaluate.restype = ctypes.c_int32
    lib.family_evaluate.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
