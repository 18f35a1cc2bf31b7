"""The Colab notebook runs top to bottom: smoke mode, offline, in a scratch working directory.

``COLORIZE_TF_SMOKE=1`` makes the notebook train a tiny model for a few steps on the embedded
sample photos, evaluate it, export one TFLite file and colorize one photo. The kernel is this
interpreter (a kernelspec written into a temporary folder, so it works wherever ipykernel is
installed, whatever other ``python3`` kernels the machine has), its working directory is empty,
and its home-like folders (Keras, Matplotlib, IPython, caches) point into the test's temporary
folder, so the run leaves nothing behind outside it.
"""

import json
import os
import sys
import time
from pathlib import Path

import nbformat
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "colorize_tf_colab.ipynb"
CELL_TIMEOUT_S = 600
WORKDIR = Path("runs") / "colab_smoke"  # the notebook's WORKDIR in smoke mode
# Any HTTP(S) request (pip, TFDS, keras-hub) fails at once: the smoke run must need no network.
DEAD_PROXY = "http://127.0.0.1:9"


def _kernel_manager(folder: Path) -> KernelManager:
    """A ``python3`` kernel that runs this very interpreter."""
    spec_dir = folder / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (test)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _kernel_env(home: Path) -> dict[str, str]:
    env = dict(os.environ)
    # The kernel and the commands it starts import this checkout's colorize_tf.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env.update(
        COLORIZE_TF_SMOKE="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        KERAS_HOME=str(home / "keras"),
        MPLCONFIGDIR=str(home / "matplotlib"),
        IPYTHONDIR=str(home / "ipython"),
        XDG_CACHE_HOME=str(home / "cache"),
        TFDS_DATA_DIR=str(home / "tensorflow_datasets"),
        PIP_NO_INDEX="1",
    )
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = DEAD_PROXY
    for name in ("NO_PROXY", "no_proxy"):
        env.pop(name, None)
    return env


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]


def test_notebook_runs_in_smoke_mode(tmp_path):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb,
        km=_kernel_manager(tmp_path),
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,  # the first failing cell raises CellExecutionError with its traceback
        resources={"metadata": {"path": str(work)}},  # the kernel's working directory
    )
    start = time.perf_counter()
    client.execute(env=_kernel_env(home), cleanup_kc=True)
    print(f"notebook ran in {time.perf_counter() - start:.0f} s")

    outputs = "".join(
        out.get("text", "") for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs
    )
    assert "already installed: skipping pip" in outputs
    run = work / WORKDIR
    assert sorted(os.listdir(work)) == ["runs"], "the notebook wrote outside its WORKDIR"
    assert sorted(os.listdir(work / "runs")) == [WORKDIR.name]
    assert (run / "generator.keras").is_file()
    assert json.loads((run / "summary.json").read_text())["val"]
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    assert metrics["count"] >= 1 and metrics["protocol"]["size"] == 64
    assert (run / "eval" / "report.png").is_file() and (run / "eval" / "report.md").is_file()
    tflite = list((run / "export").glob("*.tflite"))
    assert tflite and all(p.stat().st_size > 0 for p in tflite)
    assert json.loads((run / "export" / "export.json").read_text())["files"]
    colorized = sorted(p.name for p in (run / "colorized").glob("*.png"))
    assert colorized == ["chelsea_gray.png", "chelsea_gray_compare.png"]
    assert (run / "colorize_tf_results.zip").is_file()
