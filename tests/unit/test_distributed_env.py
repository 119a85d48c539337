"""Who a process is in a run across processes: torchrun's variables, or SLURM's for the
tasks of a job step (issue 32)."""

from __future__ import annotations

from sweeptrainer.training.distributed import Distributed, first_listed, slurm_environment

STEP = {"SLURM_PROCID": "3", "SLURM_STEP_NUM_TASKS": "4", "SLURM_LOCALID": "1",
        "SLURM_STEP_NUM_NODES": "2", "SLURM_STEP_NODELIST": "gpu[07-08]",
        "SLURM_JOB_ID": "123456"}  # fmt: skip


def test_a_task_of_a_slurm_step_gets_torchruns_variables():
    env = slurm_environment(STEP)
    assert env == {"MASTER_ADDR": "gpu07", "MASTER_PORT": str(20000 + 123456 % 40000),
                   "RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1",
                   "LOCAL_WORLD_SIZE": "2"}  # fmt: skip
    one_node = slurm_environment({**STEP, "SLURM_STEP_NUM_NODES": "1", "MASTER_PORT": "29500"})
    assert one_node is not None
    assert (one_node["MASTER_ADDR"], one_node["MASTER_PORT"]) == ("127.0.0.1", "29500")


def test_a_single_task_or_torchrun_is_left_alone():
    assert slurm_environment({**STEP, "SLURM_STEP_NUM_TASKS": "1"}) is None  # batch script
    assert slurm_environment({"SLURM_PROCID": "0", "SLURM_NTASKS": "4"}) is None  # salloc
    assert slurm_environment({**STEP, "WORLD_SIZE": "4"}) is None  # torchrun inside a job
    assert Distributed.from_env().world == 1  # this test process


def test_the_first_host_of_a_node_list():
    assert first_listed("node[03-05,07],gpu1") == "node03"
    assert first_listed("node[7,9]") == "node7"
    assert first_listed("a1,b2") == "a1"
    assert first_listed("single") == "single"
