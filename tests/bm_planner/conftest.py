import pytest
import torch


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """One intra-op thread: on the shared 2-core CI machine, 2 OpenMP threads competing with other processes made a
    tiny training step ~50x slower (measured 630 ms vs 11 ms)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
