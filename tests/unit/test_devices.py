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


def test_torch_threads_leave_room_on_a_busy_machine(monkeypatch):
    """null num_threads: half the usable cores, or the cores shared by parallel jobs;
    OMP_NUM_THREADS (the user's, or torchrun's) and an explicit num_threads win."""
    import torch

    from sweeptrainer.run import lifecycle as app

    before = torch.get_num_threads()
    monkeypatch.setattr(app, "usable_cores", lambda: 8)
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    monkeypatch.delenv("SLURM_CPUS_PER_TASK", raising=False)
    try:
        chosen = []
        for num_threads, jobs in ((None, None), (None, 4), (3, 4), (None, 16)):
            app.set_threads(num_threads, jobs)
            chosen.append(torch.get_num_threads())
        monkeypatch.setenv("LOCAL_WORLD_SIZE", "8")
        app.set_threads(None, None)
        chosen.append(torch.get_num_threads())
        monkeypatch.delenv("LOCAL_WORLD_SIZE")
        monkeypatch.setenv("SLURM_CPUS_PER_TASK", "6")  # a SLURM job's own cores: all of them
        app.set_threads(None, None)
        chosen.append(torch.get_num_threads())
        monkeypatch.setenv("OMP_NUM_THREADS", "5")
        app.set_threads(None, None)  # left as torch read it
        chosen.append(torch.get_num_threads())
        assert chosen == [4, 2, 3, 1, 1, 6, 6]
    finally:
        torch.set_num_threads(before)
