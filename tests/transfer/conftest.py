"""Shared by the transfer tests: the tasks (small NumPy arrays) and their target stores."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="module")
def blur_task():
    from daskscale.transfer.tasks import digits_blur

    return digits_blur()


@pytest.fixture(scope="module")
def blur_stores(blur_task, client, tmp_path_factory):
    """(train, test) stores of the blurred-digits target, 4 row blocks each."""
    return blur_task.write_target(tmp_path_factory.mktemp("blur"))
