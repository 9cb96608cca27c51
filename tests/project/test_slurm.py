"""The CalcJobs on a real batch scheduler: the single-node Slurm test cluster of ``scripts/slurm.sh``, through the
daemon, with the options of the user guide's GPU recipe (section 5) — and a training killed by its wall time, which
the restart workflow must see as such and restart."""

import subprocess
import sys
import time
from pathlib import Path

import pytest
from aiida import orm
from aiida.engine import submit
from aiida.engine.processes.control import kill_processes
from aiida.schedulers.datastructures import JobState
from dataset_files import TINY_CONFIG
from loop_support import check_finished_loop, tiny_loop, training_dataset

from aiida_ccdcgan.calculations.train import TrainCalculation
from aiida_ccdcgan.workflows.train import TrainBaseWorkChain

pytestmark = [pytest.mark.slurm, pytest.mark.daemon, pytest.mark.slow]

GPU_JOB = "#SBATCH --gres=gpu:1"
"""The user guide's option for a GPU partition; the test partition offers one stand-in ``gpu``."""


@pytest.fixture
def slurm_codes(aiida_computer, aiida_code_installed):
    """``ccdcgan-train``, ``-sample`` and ``-relax`` as codes on a ``core.slurm`` Computer on localhost."""
    computer = aiida_computer(
        scheduler_type="core.slurm",
        minimum_job_poll_interval=1,
        configuration_kwargs={"safe_interval": 0, "use_login_shell": False},
    )
    plugins = {"train": "ccdcgan.train", "sample": "ccdcgan.sample", "relax": "ccdcgan.relax.mlip"}
    return {
        name: aiida_code_installed(
            default_calc_job_plugin=plugin,
            computer=computer,
            filepath_executable=str(Path(sys.executable).parent / f"ccdcgan-{name}"),
        )
        for name, plugin in plugins.items()
    }


def _record_slurm_jobs(node, slurm_jobs: list) -> list:
    """The CalcJobs under ``node`` (or ``node`` itself), each checked to have gone through Slurm and recorded."""
    calcjobs = [node] if isinstance(node, orm.CalcJobNode) else []
    calcjobs += [child for child in node.called_descendants if isinstance(child, orm.CalcJobNode)]
    for calcjob in calcjobs:
        job_id = calcjob.get_job_id()
        assert calcjob.computer.scheduler_type == "core.slurm" and job_id and job_id.isdigit(), calcjob
        slurm_jobs.append(
            f"{calcjob.process_label}<{calcjob.pk}>: Slurm job {job_id}, "
            f"{calcjob.get_scheduler_state()}, exit status {calcjob.exit_status}"
        )
    return calcjobs


def test_the_loop_runs_on_slurm_with_the_gpu_recipe(slurm_codes, tmp_path, submit_and_await, slurm_jobs):
    """Training, sampling and relaxations of the tiny loop are Slurm jobs, with the user guide's GPU options."""
    builder = tiny_loop(slurm_codes, slurm_codes["relax"], tmp_path, 1)
    builder.train.train.metadata.options.custom_scheduler_commands = GPU_JOB
    builder.train.train.metadata.options.max_wallclock_seconds = 3600
    builder.sample.metadata.options.custom_scheduler_commands = GPU_JOB
    node = submit_and_await(builder, timeout=900)
    check_finished_loop(node, 1)
    calcjobs = _record_slurm_jobs(node, slurm_jobs)
    assert {"TrainCalculation", "SampleCalculation", "RelaxCalculation"} <= {c.process_label for c in calcjobs}
    for calcjob in calcjobs:
        assert calcjob.get_scheduler_state() == JobState.DONE and calcjob.exit_status == 0, calcjob
        script = calcjob.base.repository.get_object_content("_aiidasubmit.sh")
        on_gpu = calcjob.process_label in ("TrainCalculation", "SampleCalculation")
        assert (GPU_JOB in script) == on_gpu and "#SBATCH --nodes=1" in script, script
    train = next(c for c in calcjobs if c.process_label == "TrainCalculation")
    assert "#SBATCH --time=01:00:00" in train.base.repository.get_object_content("_aiidasubmit.sh")


def test_a_training_killed_by_its_wall_time_is_restarted(slurm_codes, tmp_path, started_daemon_client, slurm_jobs):
    """A training longer than its 1-minute wall time: Slurm kills it, the parser keeps the scheduler's exit code
    (not a missing output) and ``ccdcgan.train.base`` restarts it with the killed run's folder; killing the
    workflow then cancels the second Slurm job."""
    builder = TrainBaseWorkChain.get_builder()
    builder.max_iterations = orm.Int(2)
    builder.train.code = slurm_codes["train"]
    builder.train.dataset = training_dataset(tmp_path)
    builder.train.config = orm.Dict(TINY_CONFIG | {"gan": {**TINY_CONFIG["gan"], "steps": 1_000_000}})
    builder.train.metadata.options.max_wallclock_seconds = 60  # Slurm's smallest limit, one minute
    node = submit(builder)
    deadline = time.monotonic() + 420
    while len(runs := sorted(node.called, key=lambda child: child.pk)) < 2 or runs[1].get_job_id() is None:
        assert not node.is_terminated, (node.exit_status, node.exit_message, node.base.log.get_logs_for(node))
        assert time.monotonic() < deadline, "no restart within 7 min of a 1-minute wall time"
        time.sleep(2)
    killed, restarted = runs
    _record_slurm_jobs(killed, slurm_jobs)
    assert killed.exit_status == TrainCalculation.exit_codes.ERROR_SCHEDULER_OUT_OF_WALLTIME.status, (
        killed.exit_status,
        killed.exit_message,
    )
    assert "DUE TO TIME LIMIT" in killed.outputs.retrieved.base.repository.get_object_content("_scheduler-stderr.txt")
    assert restarted.inputs.parent_folder.pk == killed.outputs.remote_folder.pk
    assert any("walltime" in log.message for log in orm.Log.collection.get_logs_for(node))  # the handler's report
    job_id = restarted.get_job_id()
    kill_processes([node], timeout=60)
    deadline = time.monotonic() + 120
    while not node.is_terminated:
        assert time.monotonic() < deadline, "the killed workflow did not terminate"
        time.sleep(1)
    assert node.is_killed and restarted.is_killed
    _record_slurm_jobs(restarted, slurm_jobs)
    queue = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%T"], capture_output=True, text=True)
    assert queue.stdout.strip() in ("", "CANCELLED", "COMPLETING"), queue.stdout  # scancel'ed by the kill
