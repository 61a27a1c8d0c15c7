"""Shared fixtures of the hardware tests: the SDK requirement and a DDS domain id per test process."""

import os

import pytest

from bm_envs.hardware.sdk import sdk_available


@pytest.fixture(scope="session")
def sdk():
    """The loaded SDK. Skips where the ``hw`` extra is not installed, but fails under CI, which must install it."""
    if not sdk_available():
        msg = "unitree_sdk2py/cyclonedds not installed (the 'hw' extra; see bm_envs/hardware/sdk.py)"
        if os.environ.get("CI"):
            pytest.fail(f"{msg}: CI must install it")
        pytest.skip(msg)
    from bm_envs.hardware.sdk import load_sdk

    return load_sdk()


@pytest.fixture(scope="session")
def domain_id(sdk):
    """One DDS domain per test process (the SDK allows one participant per process); topics get per-run suffixes."""
    from bm_envs.hardware.harness import free_domain_id
    from bm_envs.hardware.sdk import init_channels

    dom = free_domain_id()
    init_channels(dom, "lo")
    return dom
