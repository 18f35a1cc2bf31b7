"""The Colab notebook runs top to bottom, installing the package the way a fresh runtime does.

A wheel is built from this checkout, and the notebook runs in a kernel whose Python has no
``colorize_tf`` yet: a throwaway virtual environment that sees this environment's libraries
(TensorFlow, Keras, Jupyter ...) through a folder of links that leaves out ``colorize_tf``'s own
files. So the notebook's install branch runs for real: its parameter ``PACKAGE_SOURCE`` (set
through ``COLORIZE_TF_PACKAGE_SOURCE``) names the wheel and its cell pip-installs it into that
environment, offline and without dependencies (``PIP_NO_INDEX``, ``PIP_NO_DEPS``: the
dependencies are already there), then imports it from there. Nothing in the checkout or in this
environment changes.

``COLORIZE_TF_SMOKE=1`` makes the notebook train a tiny model for a few steps on the embedded
sample photos, evaluate it, export one TFLite file and colorize one photo. Its working
directory is empty, and its home-like folders (Keras, Matplotlib, IPython, caches) point into
the test's temporary folder, so the run leaves nothing behind outside it. Every cell then runs a
second time in the same kernel: each must be safe to rerun.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import time
import venv
from pathlib import Path

import nbformat
import pytest
from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "colorize_tf_colab.ipynb"
CELL_TIMEOUT_S = 600
WORKDIR = Path("runs") / "colab_smoke"  # the notebook's WORKDIR in smoke mode
# What a wheel is built from (setup.cfg's packages, package data and long description).
PACKAGE_FILES = ("setup.cfg", "pyproject.toml", "README.md", "colorize_tf", "configs")
# Any HTTP(S) request (pip, git, TFDS, keras-hub) fails at once: the run must need no network.
DEAD_PROXY = "http://127.0.0.1:9"


def _cell_index(nb, cell_id: str) -> int:
    return next(i for i, cell in enumerate(nb.cells) if cell.get("id") == cell_id)


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """A wheel of this checkout, built from a copy so the checkout gains no build/ folders."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in PACKAGE_FILES:
        if (ROOT / name).is_dir():
            shutil.copytree(
                ROOT / name,
                src / name,
                symlinks=True,
                ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
            )
        else:
            shutil.copy2(ROOT / name, src / name)
    command = [
        sys.executable,
        "-m",
        "pip",
        "wheel",
        "--no-deps",
        "--quiet",
        "-w",
        str(tmp / "dist"),
    ]
    if importlib.util.find_spec("setuptools") and importlib.util.find_spec("wheel"):
        # Offline, with this environment's setuptools (wheel comes with TensorFlow's astunparse).
        subprocess.run(
            [*command, "--no-build-isolation", str(src)],
            check=True,
            env=_pip_env(tmp / "pip-cache"),
        )
    else:  # a venv without setuptools (Python >= 3.12): pip fetches the build backend
        subprocess.run([*command, str(src)], check=True)
    (found,) = (tmp / "dist").glob("colorize_tf-*.whl")
    return found


def _fresh_python(folder: Path) -> tuple[Path, Path]:
    """A new virtual environment without colorize_tf: (its python, its site-packages).

    It reaches this environment's libraries through ``deps/``, a folder of links to each entry
    of this site-packages except colorize_tf's (package, metadata, editable-install hooks) and
    the ``.pth`` files, named by one ``.pth`` line of its own.
    """
    venv.EnvBuilder(with_pip=False, symlinks=True).create(folder / "venv")
    python = folder / "venv" / "bin" / "python"
    site = Path(
        subprocess.run(
            [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    deps = folder / "deps"
    deps.mkdir()
    ours = re.compile(r"^(colorize_tf|__editable__)|\.pth$", re.IGNORECASE)
    for where in {sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}:
        for entry in Path(where).iterdir():
            if not ours.search(entry.name) and not (deps / entry.name).exists():
                (deps / entry.name).symlink_to(entry)
    (site / "shared_libraries.pth").write_text(f"{deps}\n")
    check = subprocess.run(
        [
            python,
            "-c",
            "import importlib.util as u; import tensorflow, pip; print(u.find_spec('colorize_tf'))",
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=folder,
    )
    assert check.stdout.strip() == "None", check.stdout
    return python, site


def _kernel_manager(folder: Path, python: Path) -> KernelManager:
    """A ``python3`` kernel that runs ``python``."""
    spec_dir = folder / "kernels" / "python3"
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [str(python), "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (test)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec))
    specs = KernelSpecManager(kernel_dirs=[str(folder / "kernels")])
    return KernelManager(kernel_name="python3", kernel_spec_manager=specs)


def _pip_env(cache: Path) -> dict[str, str]:
    """No index, no dependencies, no configuration of this machine: pip only unpacks a file."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
    env.update(
        PIP_CONFIG_FILE=os.devnull,
        PIP_NO_INDEX="1",
        PIP_NO_DEPS="1",
        PIP_DISABLE_PIP_VERSION_CHECK="1",
        PIP_CACHE_DIR=str(cache),
    )
    return env


def _kernel_env(home: Path, package_source: Path, backend: str = "auto") -> dict[str, str]:
    env = _pip_env(home / "pip-cache")
    env.pop("PYTHONPATH", None)  # nothing of the checkout on the path: only the installed wheel
    env.update(
        COLORIZE_TF_SMOKE="1",
        COLORIZE_TF_PACKAGE_SOURCE=str(package_source),
        COLORIZE_TF_BACKEND=backend,
        PYTHONNOUSERSITE="1",
        TF_CPP_MIN_LOG_LEVEL="2",
        KERAS_HOME=str(home / "keras"),
        MPLCONFIGDIR=str(home / "matplotlib"),
        IPYTHONDIR=str(home / "ipython"),
        XDG_CACHE_HOME=str(home / "cache"),
        TFDS_DATA_DIR=str(home / "tensorflow_datasets"),
    )
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        env[name] = DEAD_PROXY
    for name in ("NO_PROXY", "no_proxy"):
        env.pop(name, None)
    for name in [k for k in env if k.startswith(("TPU_", "COLAB_"))]:
        env.pop(name)  # this machine is no TPU host and no Colab runtime
    return env


def _client(nb, tmp_path: Path, python: Path, work: Path) -> NotebookClient:
    return NotebookClient(
        nb,
        km=_kernel_manager(tmp_path, python),
        kernel_name="python3",
        timeout=CELL_TIMEOUT_S,
        allow_errors=False,  # the first failing cell raises CellExecutionError with its traceback
        resources={"metadata": {"path": str(work)}},  # the kernel's working directory
    )


def _text(cells) -> str:
    return "".join(
        out.get("text", "") for cell in cells if cell.cell_type == "code" for out in cell.outputs
    )


def test_committed_notebook_has_no_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata["kernelspec"]["name"] == "python3"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, cell.source[:80]
    intro = nb.cells[0].source
    assert "OWNER" not in intro, "the Colab link must not hold a placeholder owner"


@pytest.mark.integration
def test_install_cell_names_what_to_set(tmp_path, wheel):
    """A placeholder, a missing file, an unreachable URL, a TPU without network, a Drive path
    outside Colab: each stops the install cell at once with a message saying what to fix."""
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    python, site = _fresh_python(tmp_path)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    params, install = _cell_index(nb, "params"), _cell_index(nb, "install")
    drive_existed = os.path.exists("/content/drive")
    cases = [  # (code run after the parameter cell, words the error must hold)
        (
            "PACKAGE_SOURCE = 'git+https://github.com/OWNER/colorize_tf'",
            ["PACKAGE_SOURCE = 'git+https://github.com/OWNER/colorize_tf'", "names no package"],
        ),
        ("PACKAGE_SOURCE = ''", ["PACKAGE_SOURCE = ''", "names no package"]),
        (
            f"PACKAGE_SOURCE = {str(tmp_path / 'missing.whl')!r}",
            [str(tmp_path / "missing.whl"), "no such file"],
        ),
        (f"PACKAGE_SOURCE = {str(site)!r} + '/../../../pyvenv.cfg'", ["is no wheel"]),
        (
            "PACKAGE_SOURCE = 'git+https://git.invalid/colorize_tf'",
            [
                "could not install colorize_tf from PACKAGE_SOURCE = 'git+https://git.invalid/colorize_tf'"
            ],
        ),
        (  # BACKEND = "tensorflow" on a TPU: the TPUStrategy path installs tensorflow-tpu
            "os.environ['TPU_ACCELERATOR_TYPE'] = 'v5litepod-1'\nBACKEND = 'tensorflow'",
            ["could not install", "tensorflow-tpu==2.20.0", "libtpu-tf-releases"],
        ),
        (
            "BACKEND = 'theano'",
            ["BACKEND = 'theano': use 'auto', 'tensorflow' or 'jax'"],
        ),
        (
            "WORKDIR = '/content/drive/MyDrive/colorize_tf/run'",
            ["WORKDIR = '/content/drive/MyDrive/colorize_tf/run'", "not mounted"],
        ),
        (
            f"PACKAGE_SOURCE = '/content/drive/MyDrive/{wheel.name}'",
            [f"PACKAGE_SOURCE = '/content/drive/MyDrive/{wheel.name}'", "not mounted"],
        ),
    ]
    client = _client(nb, tmp_path, python, work)
    with client.setup_kernel(env=_kernel_env(home, wheel)):
        client.execute_cell(nb.cells[params], params)
        for code, words in cases:
            reset = nbformat.v4.new_code_cell(
                "os.environ.pop('TPU_ACCELERATOR_TYPE', None)\nBACKEND = 'auto'\n"
                f"PACKAGE_SOURCE = {str(wheel)!r}\nWORKDIR = 'runs/colab_smoke'\n{code}"
            )
            client.execute_cell(reset, 0)
            start = time.perf_counter()
            with pytest.raises(CellExecutionError) as failure:
                client.execute_cell(nb.cells[install], install)
            message = str(failure.value)
            assert time.perf_counter() - start < 60, code
            for word in words:
                assert word in message, f"{code}: {word!r} not in\n{message[-2000:]}"
            assert "colorize_tf" not in {p.name for p in site.iterdir()}, code
    assert os.listdir(work) == [], "a refused install wrote files"
    assert os.path.exists("/content/drive") == drive_existed


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["auto", "jax"])  # auto: TensorFlow on this CPU
def test_notebook_installs_and_runs_in_smoke_mode(tmp_path, wheel, backend):
    work, home = tmp_path / "work", tmp_path / "home"
    work.mkdir()
    home.mkdir()
    python, site = _fresh_python(tmp_path)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = _client(nb, tmp_path, python, work)
    start = time.perf_counter()
    with client.setup_kernel(env=_kernel_env(home, wheel, backend)):
        for index, cell in enumerate(nb.cells):
            client.execute_cell(cell, index)
        first, training = _text(nb.cells), _text([nb.cells[_cell_index(nb, "train")]])
        once = time.perf_counter() - start
        for index, cell in enumerate(nb.cells):  # every cell again, in the same kernel
            client.execute_cell(cell, index)
        second = _text(nb.cells)
    print(f"notebook ran in {once:.0f} s, rerun in {time.perf_counter() - start - once:.0f} s")

    # The install branch ran and the kernel imported the installed wheel, not the checkout.
    assert f"installing colorize_tf from {wheel}" in first
    assert "already installed: skipping pip" not in first
    (location,) = re.findall(r"^colorize_tf \S+ from (.+)$", first, re.MULTILINE)
    assert Path(location).resolve() == (site / "colorize_tf").resolve()
    assert not Path(location).resolve().is_relative_to(ROOT)
    assert (site / "colorize_tf" / "configs" / "coco_paper.yaml").is_file()
    assert "colorize_tf is already installed: skipping pip" in second
    assert "meets colorize_tf's tensorflow" in first and "meets colorize_tf's keras" in first
    assert "running on CPU" in first and "WARNING: no GPU or TPU" not in first

    run = work / WORKDIR
    assert sorted(os.listdir(work)) == ["runs"], "the notebook wrote outside its WORKDIR"
    assert sorted(os.listdir(work / "runs")) == [WORKDIR.name]
    trained_under = "tensorflow" if backend == "auto" else backend
    assert f"training backend: {trained_under}" in first
    assert f"on {trained_under}:" in training
    assert (run / "model" / "config.json").is_file() and (
        run / "model" / "model.weights.h5"
    ).is_file()
    assert json.loads((run / "summary.json").read_text())["val"]
    # The sample shown is the GAN phase's last one, though "pretrain-" sorts after "gan-".
    assert sorted(p.name for p in (run / "samples").glob("*.png")) == [
        "gan-epoch-001.png",
        "pretrain-epoch-001.png",
    ]
    assert "sample: gan-epoch-001.png" in first and "sample: gan-epoch-001.png" in second
    # fit() prints one line per epoch (verbose=2), no progress bar redrawn per step.
    assert re.search(r"^3/3 - \d+s", training, re.MULTILINE), training[-3000:]
    assert "\x08" not in training and "\r" not in training
    metrics = json.loads((run / "eval" / "metrics.json").read_text())
    # The protocol's 256 px crop; the smoke model (trained at 64 px) is fed 64 px, its own size.
    assert metrics["count"] >= 1 and metrics["protocol"]["size"] == 256
    assert "input 64x64" in metrics["protocol"]["model"]
    assert (run / "eval" / "report.png").is_file() and (run / "eval" / "report.md").is_file()
    tflite = list((run / "export").glob("*.tflite"))
    assert tflite and all(p.stat().st_size > 0 for p in tflite)
    assert json.loads((run / "export" / "export.json").read_text())["files"]
    assert "for download: colorize_rgb_fp32.tflite" in first
    colorized = sorted(p.name for p in (run / "colorized").glob("*.png"))
    assert colorized == ["chelsea_gray.png", "chelsea_gray_compare.png"]
    assert (run / "colorize_tf_results.zip").is_file()
