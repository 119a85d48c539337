"""Which device a run gets: `device: auto` and GPU slots for parallel jobs (no GPU needed)."""

import pytest

from sweeptrainer.training.builder import choose_device


def test_auto_without_cuda_is_cpu():
    assert choose_device("auto", 0) == "cpu"
    assert choose_device("auto", 0, job_num=3) == "cpu"


def test_auto_with_one_gpu_uses_it_for_every_job():
    assert [choose_device("auto", 1, job_num=j) for j in range(3)] == ["cuda"] * 3


def test_auto_with_several_gpus_gives_jobs_their_own():
    assert [choose_device("auto", 4, job_num=j) for j in range(6)] == [
        "cuda:0", "cuda:1", "cuda:2", "cuda:3", "cuda:0", "cuda:1",
    ]  # fmt: skip
    assert choose_device("auto", 4) == "cuda"  # a single run outside a sweep


@pytest.mark.parametrize("name", ["cpu", "cuda", "cuda:1"])
def test_explicit_devices_are_kept(name):
    assert choose_device(name, 4, job_num=2) == name
