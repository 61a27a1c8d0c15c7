"""Lazy, patched import of ``unitree_sdk2py`` (PyPI ``unitree-sdk2``) and the process-wide DDS channel setup.

Nothing here runs at import time: :func:`load_sdk` imports the SDK on first use, so ``import bm_envs`` and
``import bm_envs.hardware`` never need it.

Work-arounds for the 1.0.1 wheel (measured on the 1.0.1 wheel):

* ``unitree_sdk2py/__init__.py`` imports a subpackage ``b2`` the wheel does not ship; an empty placeholder module
  is registered under ``unitree_sdk2py.b2`` before the import (only when the real one is absent).
* the CRC helper's compiled library is missing; we never instantiate ``unitree_sdk2py.utils.crc.CRC`` and use
  :mod:`bm_envs.hardware.crc` instead.
* ``ChannelSubscriber.Close()`` deletes its DDS reader while the cyclonedds listener thread may be inside that
  reader's callback; the callback then drops the last reference and deletes the reader from the listener thread,
  which deadlocks the process (observed in our tests). :func:`close_endpoint` first removes the listeners —
  Cyclone's ``dds_set_listener`` waits for callbacks in progress — and only then closes.

DDS: the SDK's ``ChannelFactory`` is a process-wide singleton bound to one domain id and one network interface.
:func:`init_channels` records which, and refuses a second, different pair in the same process instead of the
SDK's silent no-op.

Install (the wire-compatible route: Cyclone DDS 0.10.2, as on the robot; the Python binding compiles against
Debian's C library in ~10 s; its build looks for ``$CYCLONEDDS_HOME/{include,bin,lib/libddsc.so}``, which Debian
spreads over ``/usr`` and ``/usr/lib/<multiarch>``, hence the folder of links; at run time the library is found
through the loader's usual search)::

    apt-get install -y cyclonedds-dev
    mkdir -p /opt/cyclonedds && ln -sfn /usr/include /opt/cyclonedds/include && ln -sfn /usr/bin /opt/cyclonedds/bin
    ln -sfn "$(dirname /usr/lib/*/libddsc.so)" /opt/cyclonedds/lib
    CYCLONEDDS_HOME=/opt/cyclonedds pip install -e '.[hw]'   # cyclonedds==0.10.2 (built), unitree-sdk2==1.0.1
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any

INSTALL_HINT = (
    "the hardware env needs unitree_sdk2py (PyPI 'unitree-sdk2==1.0.1') and cyclonedds==0.10.2: "
    "`apt-get install -y cyclonedds-dev`, then `CYCLONEDDS_HOME=<folder with include/, bin/, lib/libddsc.so> "
    "pip install -e '.[hw]'` (exact lines in the docstring of bm_envs/hardware/sdk.py)"
)


class SDKUnavailable(ImportError):
    """``unitree_sdk2py`` or its DDS binding cannot be imported; the message says how to install them."""


@dataclass(frozen=True)
class SDK:
    """The pieces of ``unitree_sdk2py`` the hardware env and the bridge use."""

    ChannelFactoryInitialize: Any
    ChannelPublisher: Any
    ChannelSubscriber: Any
    LowCmd_: Any
    LowState_: Any
    MotorCmd_: Any
    MotorState_: Any
    IMUState_: Any
    Odometry_: Any
    String_: Any
    default_odometry: Any


_sdk: SDK | None = None
_lock = threading.Lock()
_channels: tuple[int, str] | None = None


def sdk_available() -> bool:
    """True when ``unitree_sdk2py`` and ``cyclonedds`` are installed (does not import them)."""
    return all(importlib.util.find_spec(m) is not None for m in ("unitree_sdk2py", "cyclonedds"))


def _has_b2() -> bool:
    """Whether the installed ``unitree_sdk2py`` ships its ``b2`` subpackage (checked without importing it)."""
    spec = importlib.util.find_spec("unitree_sdk2py")
    locations = list(spec.submodule_search_locations or []) if spec else []
    return any((Path(d) / "b2").is_dir() or (Path(d) / "b2.py").is_file() for d in locations)


def load_sdk() -> SDK:
    """Import ``unitree_sdk2py`` once (with the ``b2`` placeholder) and return its relevant classes."""
    global _sdk
    with _lock:
        if _sdk is not None:
            return _sdk
        if not sdk_available():
            raise SDKUnavailable(INSTALL_HINT)
        if "unitree_sdk2py.b2" not in sys.modules and not _has_b2():
            placeholder = types.ModuleType("unitree_sdk2py.b2")
            placeholder.__doc__ = "placeholder registered by bm_envs.hardware.sdk: the 1.0.1 wheel lacks this package"
            sys.modules["unitree_sdk2py.b2"] = placeholder
        try:
            from unitree_sdk2py.core.channel import ChannelFactoryInitialize, ChannelPublisher, ChannelSubscriber
            from unitree_sdk2py.idl.default import nav_msgs_msg_dds__Odometry_
            from unitree_sdk2py.idl.nav_msgs.msg.dds_ import Odometry_
            from unitree_sdk2py.idl.std_msgs.msg.dds_ import String_
            from unitree_sdk2py.idl.unitree_hg.msg.dds_ import IMUState_, LowCmd_, LowState_, MotorCmd_, MotorState_
        except Exception as e:  # a broken binding (e.g. libddsc missing) surfaces here
            raise SDKUnavailable(f"importing unitree_sdk2py failed ({type(e).__name__}: {e}); {INSTALL_HINT}") from e
        _sdk = SDK(
            ChannelFactoryInitialize, ChannelPublisher, ChannelSubscriber, LowCmd_, LowState_, MotorCmd_,
            MotorState_, IMUState_, Odometry_, String_, nav_msgs_msg_dds__Odometry_,
        )  # fmt: skip
        return _sdk


def init_channels(domain_id: int, interface: str) -> SDK:
    """Initialize the SDK's DDS participant on ``domain_id`` bound to network ``interface`` (e.g. ``"lo"``).

    The SDK allows one (domain, interface) per process; asking for a different pair later raises ``RuntimeError``.
    """
    global _channels
    if isinstance(domain_id, bool) or not isinstance(domain_id, int) or not 0 <= domain_id <= 232:
        raise ValueError(f"domain_id must be an integer in [0, 232] (Cyclone DDS), got {domain_id!r}")
    if not isinstance(interface, str) or not interface or any(c in interface for c in "<>\"'& "):
        raise ValueError(f"interface must be a network interface name such as 'lo' or 'eth0', got {interface!r}")
    sdk = load_sdk()
    with _lock:
        if _channels is not None:
            if _channels != (domain_id, interface):
                raise RuntimeError(
                    f"DDS already initialized in this process on domain {_channels[0]} / {_channels[1]!r}; the SDK "
                    f"cannot also use domain {domain_id} / {interface!r} (one participant per process)"
                )
            return sdk
        sdk.ChannelFactoryInitialize(domain_id, interface)
        _channels = (domain_id, interface)
    return sdk


def initialized_channels() -> tuple[int, str] | None:
    """The (domain_id, interface) this process's DDS participant uses, or None before :func:`init_channels`."""
    return _channels


def close_endpoint(endpoint) -> None:
    """Close an SDK ``ChannelPublisher``/``ChannelSubscriber`` without racing its listener (see the module doc).

    Must not be called while holding a lock that the endpoint's callback takes.
    """
    channel = getattr(endpoint, "_ChannelSubscriber__channel", None) or getattr(
        endpoint, "_ChannelPublisher__channel", None
    )
    if channel is not None:  # SDK internals: Channel.__reader.__reader (DataReader), Channel.__writer.__writer
        entities = (
            getattr(getattr(channel, "_Channel__reader", None), "_Reader__reader", None),
            getattr(getattr(channel, "_Channel__writer", None), "_Writer__writer", None),
        )
        for entity in entities:
            listener = getattr(entity, "_listener", None)
            if listener is not None:
                entity.set_listener(None)  # blocks until callbacks in progress have returned
                del listener  # the ctypes callbacks stay alive until the C side has let go of them
    endpoint.Close()
